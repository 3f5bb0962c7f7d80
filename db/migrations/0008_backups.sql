CREATE TABLE "alerts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"idempotency_key" text NOT NULL,
	"kind" text NOT NULL,
	"target_type" text NOT NULL,
	"target_id" text NOT NULL,
	"reason" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"channel" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"workflow_id" text,
	"run_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "backups" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"phase" text,
	"bytes_done" bigint DEFAULT 0 NOT NULL,
	"data_backup_id" uuid,
	"requested_by" text NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"snapshot_at" timestamp with time zone,
	"size_bytes" bigint,
	"duration_ms" integer,
	"manifest" jsonb,
	"storage_key" text,
	"error" text,
	"last_restore_test_id" uuid,
	"last_restore_test_status" text,
	"last_restore_test_at" timestamp with time zone,
	"retain_until" timestamp with time zone,
	"deleted_at" timestamp with time zone,
	"workflow_id" text,
	"run_id" text
);
--> statement-breakpoint
CREATE TABLE "restore_tests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"backup_id" uuid NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"trigger" text NOT NULL,
	"requested_by" text NOT NULL,
	"phase" text,
	"bytes_done" bigint DEFAULT 0 NOT NULL,
	"reasons" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"tables" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"rto_ms" integer,
	"rpo_ms" bigint,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"workflow_id" text,
	"run_id" text
);
--> statement-breakpoint
ALTER TABLE "restore_tests" ADD CONSTRAINT "restore_tests_backup_id_backups_id_fk" FOREIGN KEY ("backup_id") REFERENCES "public"."backups"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_idempotency_key_uq" ON "alerts" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "alerts_target_idx" ON "alerts" USING btree ("target_type","target_id");--> statement-breakpoint
CREATE INDEX "alerts_created_idx" ON "alerts" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "backups_kind_started_idx" ON "backups" USING btree ("kind","started_at");--> statement-breakpoint
CREATE INDEX "backups_status_idx" ON "backups" USING btree ("status");--> statement-breakpoint
CREATE INDEX "backups_data_backup_idx" ON "backups" USING btree ("data_backup_id");--> statement-breakpoint
CREATE INDEX "restore_tests_backup_idx" ON "restore_tests" USING btree ("backup_id","started_at");