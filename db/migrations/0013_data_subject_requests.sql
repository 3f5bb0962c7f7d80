CREATE TABLE "field_objections" (
	"request_id" uuid NOT NULL,
	"subject_id" uuid NOT NULL,
	"field" text NOT NULL,
	"status" text NOT NULL,
	"marked_at" timestamp with time zone NOT NULL,
	"resolved_at" timestamp with time zone,
	"statement_text_id" uuid,
	CONSTRAINT "field_objections_request_id_field_pk" PRIMARY KEY("request_id","field")
);
--> statement-breakpoint
CREATE TABLE "request_events" (
	"n" bigserial PRIMARY KEY NOT NULL,
	"request_id" uuid NOT NULL,
	"type" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"actor" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"text_id" uuid,
	"idempotency_key" text NOT NULL,
	"workflow_id" text,
	"run_id" text
);
--> statement-breakpoint
CREATE TABLE "request_exports" (
	"id" uuid PRIMARY KEY NOT NULL,
	"request_id" uuid NOT NULL,
	"subject_id" uuid NOT NULL,
	"delivery" text NOT NULL,
	"sha256" text NOT NULL,
	"bytes" integer NOT NULL,
	"recipient" text NOT NULL,
	"sealed" "bytea",
	"wrapped_key" "bytea",
	"link_expires_at" timestamp with time zone,
	"served_at" timestamp with time zone,
	"idempotency_key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "request_restrictions" (
	"subject_id" uuid NOT NULL,
	"purpose" text NOT NULL,
	"request_id" uuid NOT NULL,
	"reason" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "request_restrictions_subject_id_purpose_request_id_pk" PRIMARY KEY("subject_id","purpose","request_id")
);
--> statement-breakpoint
CREATE TABLE "request_texts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"request_id" uuid NOT NULL,
	"subject_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"key_version" integer NOT NULL,
	"ciphertext" "bytea" NOT NULL,
	"sha256" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "requests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"subject_id" uuid NOT NULL,
	"channel" text NOT NULL,
	"jurisdiction" text NOT NULL,
	"status" text NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"clock" jsonb NOT NULL,
	"verification" jsonb,
	"assignee" text,
	"late" boolean DEFAULT false NOT NULL,
	"fields" text[] DEFAULT '{}' NOT NULL,
	"purposes" text[] DEFAULT '{}' NOT NULL,
	"category" text,
	"outcome" text,
	"destruction_id" uuid,
	"filed_by" text NOT NULL,
	"closed_at" timestamp with time zone,
	"workflow_id" text,
	"run_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "field_objections_subject_idx" ON "field_objections" USING btree ("subject_id");--> statement-breakpoint
CREATE UNIQUE INDEX "request_events_idempotency_key_uq" ON "request_events" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "request_events_request_idx" ON "request_events" USING btree ("request_id","at");--> statement-breakpoint
CREATE UNIQUE INDEX "request_exports_idempotency_key_uq" ON "request_exports" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "request_exports_request_idx" ON "request_exports" USING btree ("request_id");--> statement-breakpoint
CREATE INDEX "request_texts_request_idx" ON "request_texts" USING btree ("request_id");--> statement-breakpoint
CREATE INDEX "requests_status_idx" ON "requests" USING btree ("status","received_at");--> statement-breakpoint
CREATE INDEX "requests_type_idx" ON "requests" USING btree ("type","received_at");--> statement-breakpoint
CREATE INDEX "requests_subject_idx" ON "requests" USING btree ("subject_id");--> statement-breakpoint
CREATE INDEX "requests_received_idx" ON "requests" USING btree ("received_at");