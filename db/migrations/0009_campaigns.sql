CREATE TABLE "campaign_batches" (
	"campaign_id" uuid NOT NULL,
	"start_after" text NOT NULL,
	"end_subject_id" uuid NOT NULL,
	"subjects" integer NOT NULL,
	"notified" integer NOT NULL,
	"consents_requested" integer NOT NULL,
	"failed" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "campaign_batches_campaign_id_start_after_pk" PRIMARY KEY("campaign_id","start_after")
);
--> statement-breakpoint
CREATE TABLE "campaign_targets" (
	"campaign_id" uuid NOT NULL,
	"subject_id" uuid NOT NULL,
	"outcome" text NOT NULL,
	"consent_id" uuid,
	"error" text,
	CONSTRAINT "campaign_targets_campaign_id_subject_id_pk" PRIMARY KEY("campaign_id","subject_id")
);
--> statement-breakpoint
CREATE TABLE "campaigns" (
	"id" uuid PRIMARY KEY NOT NULL,
	"notice_id" uuid NOT NULL,
	"purpose_changed" boolean NOT NULL,
	"jurisdiction" text,
	"import_id" text,
	"rate_per_second" double precision,
	"batch_size" integer NOT NULL,
	"consent_terms" jsonb,
	"status" text DEFAULT 'running' NOT NULL,
	"requested_by" text NOT NULL,
	"total" integer DEFAULT 0 NOT NULL,
	"targeted" integer DEFAULT 0 NOT NULL,
	"notified" integer DEFAULT 0 NOT NULL,
	"consents_requested" integer DEFAULT 0 NOT NULL,
	"failed" integer DEFAULT 0 NOT NULL,
	"batches" integer DEFAULT 0 NOT NULL,
	"report" jsonb,
	"error" text,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "campaign_batches" ADD CONSTRAINT "campaign_batches_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "campaign_targets" ADD CONSTRAINT "campaign_targets_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;