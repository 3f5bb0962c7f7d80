CREATE TABLE "kek_versions" (
	"version" integer PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"wrapped_key" "bytea",
	"wrapped_by" integer,
	"status" text NOT NULL,
	"rotation_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"retired_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "key_rotation_batches" (
	"rotation_id" uuid NOT NULL,
	"start_after" text NOT NULL,
	"next_after" text,
	"rewrapped" integer NOT NULL,
	"skipped" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "key_rotation_batches_rotation_id_start_after_pk" PRIMARY KEY("rotation_id","start_after")
);
--> statement-breakpoint
CREATE TABLE "key_rotations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"workflow_id" text NOT NULL,
	"status" text NOT NULL,
	"requested_by" text NOT NULL,
	"from_versions" jsonb NOT NULL,
	"to_version" integer NOT NULL,
	"keys_rewrapped" integer DEFAULT 0 NOT NULL,
	"keys_verified" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "quality_batches" (
	"check_id" uuid NOT NULL,
	"start_after" text NOT NULL,
	"next_after" text,
	"subjects" integer NOT NULL,
	"counts" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "quality_batches_check_id_start_after_pk" PRIMARY KEY("check_id","start_after")
);
--> statement-breakpoint
CREATE TABLE "quality_reports" (
	"id" uuid PRIMARY KEY NOT NULL,
	"workflow_id" text NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"requested_by" text NOT NULL,
	"thresholds" jsonb NOT NULL,
	"subjects_checked" integer DEFAULT 0 NOT NULL,
	"fields" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"timeliness" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"consistency" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"breaches" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"alert_id" text,
	"incident_id" text,
	"started_at" timestamp with time zone NOT NULL,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "quality_reports_started_idx" ON "quality_reports" USING btree ("started_at");