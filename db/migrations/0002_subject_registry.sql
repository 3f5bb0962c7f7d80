CREATE TABLE "import_batches" (
	"import_id" uuid NOT NULL,
	"start_offset" bigint NOT NULL,
	"end_offset" bigint NOT NULL,
	"first_line" integer NOT NULL,
	"next_line" integer NOT NULL,
	"lines" integer NOT NULL,
	"imported" integer NOT NULL,
	"updated" integer NOT NULL,
	"duplicates" integer NOT NULL,
	"rejected" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "import_batches_import_id_start_offset_pk" PRIMARY KEY("import_id","start_offset")
);
--> statement-breakpoint
CREATE TABLE "import_rejects" (
	"import_id" uuid NOT NULL,
	"line" integer NOT NULL,
	"reason" text NOT NULL,
	"message" text NOT NULL,
	CONSTRAINT "import_rejects_import_id_line_pk" PRIMARY KEY("import_id","line")
);
--> statement-breakpoint
CREATE TABLE "subject_fields" (
	"subject_id" uuid NOT NULL,
	"field" text NOT NULL,
	"classification" text NOT NULL,
	"classified" boolean NOT NULL,
	"value_type" text NOT NULL,
	"key_version" integer,
	"ciphertext" "bytea",
	"plain_value" text,
	"blind_index" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "subject_fields_subject_id_field_pk" PRIMARY KEY("subject_id","field"),
	CONSTRAINT "subject_fields_value_ck" CHECK (("subject_fields"."classification" = 'general' and "subject_fields"."plain_value" is not null and "subject_fields"."ciphertext" is null)
        or ("subject_fields"."classification" <> 'general' and "subject_fields"."ciphertext" is not null and "subject_fields"."key_version" is not null and "subject_fields"."plain_value" is null))
);
--> statement-breakpoint
CREATE TABLE "subject_imports" (
	"id" uuid PRIMARY KEY NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"mode" text NOT NULL,
	"requested_by" text NOT NULL,
	"staged_bytes" bigint NOT NULL,
	"total_lines" integer NOT NULL,
	"processed_bytes" bigint DEFAULT 0 NOT NULL,
	"processed_lines" integer DEFAULT 0 NOT NULL,
	"imported" integer DEFAULT 0 NOT NULL,
	"updated" integer DEFAULT 0 NOT NULL,
	"duplicates" integer DEFAULT 0 NOT NULL,
	"rejected" integer DEFAULT 0 NOT NULL,
	"unclassified_fields" text[] DEFAULT '{}'::text[] NOT NULL,
	"error" text,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "import_batches" ADD CONSTRAINT "import_batches_import_id_subject_imports_id_fk" FOREIGN KEY ("import_id") REFERENCES "public"."subject_imports"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "import_rejects" ADD CONSTRAINT "import_rejects_import_id_subject_imports_id_fk" FOREIGN KEY ("import_id") REFERENCES "public"."subject_imports"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "subject_fields_blind_index_idx" ON "subject_fields" USING btree ("field","blind_index") WHERE "subject_fields"."blind_index" is not null;