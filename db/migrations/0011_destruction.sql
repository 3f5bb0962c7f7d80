CREATE TABLE "destruction_batches" (
	"destruction_id" uuid NOT NULL,
	"start_after" text NOT NULL,
	"last_subject_id" uuid NOT NULL,
	"subjects" integer NOT NULL,
	"keys" integer NOT NULL,
	"field_rows" integer NOT NULL,
	"key_ids_sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "destruction_batches_destruction_id_start_after_pk" PRIMARY KEY("destruction_id","start_after")
);
--> statement-breakpoint
CREATE TABLE "destruction_certificates" (
	"id" uuid PRIMARY KEY NOT NULL,
	"destruction_id" uuid NOT NULL,
	"certificate" jsonb NOT NULL,
	"signature" jsonb NOT NULL,
	"sha256" text NOT NULL,
	"audit_seq" bigint,
	"issued_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "destruction_targets" (
	"destruction_id" uuid NOT NULL,
	"subject_id" uuid NOT NULL,
	"fields" text[],
	CONSTRAINT "destruction_targets_destruction_id_subject_id_pk" PRIMARY KEY("destruction_id","subject_id")
);
--> statement-breakpoint
CREATE TABLE "destructions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"scope" jsonb NOT NULL,
	"reason" text NOT NULL,
	"requested_by" text NOT NULL,
	"origin" jsonb,
	"auto_approved" boolean DEFAULT false NOT NULL,
	"matched" integer DEFAULT 0 NOT NULL,
	"held" integer DEFAULT 0 NOT NULL,
	"targeted" integer DEFAULT 0 NOT NULL,
	"subjects_destroyed" integer DEFAULT 0 NOT NULL,
	"keys_destroyed" integer DEFAULT 0 NOT NULL,
	"field_rows_deleted" integer DEFAULT 0 NOT NULL,
	"approvals" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"approval_deadline" timestamp with time zone,
	"grace_until" timestamp with time zone,
	"outcome" text,
	"certificate_id" uuid,
	"workflow_id" text,
	"run_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "legal_hold_subjects" (
	"hold_id" uuid NOT NULL,
	"subject_id" uuid NOT NULL,
	CONSTRAINT "legal_hold_subjects_hold_id_subject_id_pk" PRIMARY KEY("hold_id","subject_id")
);
--> statement-breakpoint
CREATE TABLE "legal_holds" (
	"id" uuid PRIMARY KEY NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"reason" text NOT NULL,
	"filter" jsonb,
	"subjects" integer NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"released_by" text,
	"released_at" timestamp with time zone,
	"release_reason" text
);
--> statement-breakpoint
CREATE UNIQUE INDEX "destruction_certificates_destruction_uq" ON "destruction_certificates" USING btree ("destruction_id");--> statement-breakpoint
CREATE INDEX "destructions_status_idx" ON "destructions" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "legal_hold_subjects_subject_idx" ON "legal_hold_subjects" USING btree ("subject_id");