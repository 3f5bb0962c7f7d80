CREATE TABLE "escalation_policies" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"levels" jsonb NOT NULL,
	"repeat" integer NOT NULL,
	"reescalate_after_ms" bigint,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "incident_affected_subjects" (
	"incident_id" uuid NOT NULL,
	"subject_id" uuid NOT NULL,
	CONSTRAINT "incident_affected_subjects_incident_id_subject_id_pk" PRIMARY KEY("incident_id","subject_id")
);
--> statement-breakpoint
CREATE TABLE "incident_pages" (
	"id" uuid PRIMARY KEY NOT NULL,
	"incident_id" uuid NOT NULL,
	"round" integer NOT NULL,
	"cycle" integer NOT NULL,
	"level" integer NOT NULL,
	"user_id" uuid NOT NULL,
	"via" text NOT NULL,
	"schedule_id" uuid,
	"status" text DEFAULT 'pending' NOT NULL,
	"error" text,
	"notification_id" uuid,
	"paged_at" timestamp with time zone NOT NULL,
	"sent_at" timestamp with time zone,
	"link_expires_at" timestamp with time zone NOT NULL,
	"link_used_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "incident_texts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"incident_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"body" text NOT NULL,
	"sha256" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "incident_timeline" (
	"n" bigserial PRIMARY KEY NOT NULL,
	"incident_id" uuid NOT NULL,
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
CREATE TABLE "incidents" (
	"id" uuid PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"severity" text NOT NULL,
	"category" text NOT NULL,
	"title_text_id" uuid NOT NULL,
	"personal_data" boolean NOT NULL,
	"jurisdictions" text[] NOT NULL,
	"aware_at" timestamp with time zone NOT NULL,
	"opened_by" text NOT NULL,
	"opened_at" timestamp with time zone NOT NULL,
	"policy_id" uuid NOT NULL,
	"policy" jsonb NOT NULL,
	"escalation" jsonb,
	"acknowledged_by" text,
	"acknowledged_at" timestamp with time zone,
	"late" boolean DEFAULT false NOT NULL,
	"affected_count" bigint DEFAULT 0 NOT NULL,
	"affected" jsonb NOT NULL,
	"cn_operator" text NOT NULL,
	"grade_suggested" text NOT NULL,
	"grade_confirmed" text,
	"grade_confirmed_by" text,
	"deadlines" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"resolved_at" timestamp with time zone,
	"postmortem_due_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"workflow_id" text,
	"run_id" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "oncall_schedules" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"time_zone" text NOT NULL,
	"start_local" text NOT NULL,
	"handoff_every" integer NOT NULL,
	"handoff_unit" text NOT NULL,
	"responders" uuid[] NOT NULL,
	"overrides" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "regulator_notifications" (
	"id" uuid PRIMARY KEY NOT NULL,
	"incident_id" uuid NOT NULL,
	"deadline" text NOT NULL,
	"authority" text NOT NULL,
	"reference" text NOT NULL,
	"notified_at" timestamp with time zone NOT NULL,
	"late" boolean NOT NULL,
	"reasons_text_id" uuid,
	"recorded_by" text NOT NULL,
	"idempotency_key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "user_contacts" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"kek_version" integer NOT NULL,
	"ciphertext" "bytea" NOT NULL,
	"locale" text DEFAULT 'zh-CN' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "user_contacts" ADD CONSTRAINT "user_contacts_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "incident_pages_step_user_uq" ON "incident_pages" USING btree ("incident_id","round","cycle","level","user_id");--> statement-breakpoint
CREATE INDEX "incident_pages_incident_idx" ON "incident_pages" USING btree ("incident_id","paged_at");--> statement-breakpoint
CREATE INDEX "incident_texts_incident_idx" ON "incident_texts" USING btree ("incident_id");--> statement-breakpoint
CREATE UNIQUE INDEX "incident_timeline_idempotency_key_uq" ON "incident_timeline" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "incident_timeline_incident_idx" ON "incident_timeline" USING btree ("incident_id","at");--> statement-breakpoint
CREATE INDEX "incidents_status_idx" ON "incidents" USING btree ("status","opened_at");--> statement-breakpoint
CREATE INDEX "incidents_severity_idx" ON "incidents" USING btree ("severity","opened_at");--> statement-breakpoint
CREATE INDEX "incidents_opened_idx" ON "incidents" USING btree ("opened_at");--> statement-breakpoint
CREATE UNIQUE INDEX "regulator_notifications_idempotency_key_uq" ON "regulator_notifications" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "regulator_notifications_incident_idx" ON "regulator_notifications" USING btree ("incident_id","notified_at");