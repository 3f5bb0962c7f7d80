CREATE TABLE "access_grants" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"capability" text NOT NULL,
	"classification" text,
	"purpose" text,
	"expires_at" timestamp with time zone NOT NULL,
	"reviewer_id" uuid NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	"revoked_by" text,
	"revoke_reason" text,
	CONSTRAINT "access_grants_scope_ck" CHECK ("access_grants"."classification" is not null or "access_grants"."purpose" is not null),
	CONSTRAINT "access_grants_reviewer_ck" CHECK ("access_grants"."reviewer_id" <> "access_grants"."user_id")
);
--> statement-breakpoint
CREATE TABLE "access_review_items" (
	"review_id" uuid NOT NULL,
	"grant_id" uuid NOT NULL,
	"grantee_id" uuid NOT NULL,
	"reviewer_id" uuid NOT NULL,
	"decision" text,
	"decided_by" text,
	"decided_api_key_id" uuid,
	"decided_at" timestamp with time zone,
	"outcome" text,
	CONSTRAINT "access_review_items_review_id_grant_id_pk" PRIMARY KEY("review_id","grant_id")
);
--> statement-breakpoint
CREATE TABLE "access_reviews" (
	"id" uuid PRIMARY KEY NOT NULL,
	"period" text NOT NULL,
	"status" text NOT NULL,
	"requested_by" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"deadline_at" timestamp with time zone NOT NULL,
	"closed_at" timestamp with time zone,
	"summary" jsonb,
	"workflow_id" text,
	"run_id" text
);
--> statement-breakpoint
CREATE TABLE "obligation_completions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"obligation_id" uuid NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"completed_at" timestamp with time zone NOT NULL,
	"completed_by" text NOT NULL,
	"api_key_id" uuid,
	"evidence_note" text,
	"evidence_sha256" text,
	"next_due_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "obligations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"key" text NOT NULL,
	"title" text NOT NULL,
	"source" text NOT NULL,
	"owner_id" uuid,
	"recurrence_months" integer NOT NULL,
	"next_due_at" timestamp with time zone NOT NULL,
	"remind_before_ms" bigint NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "access_grants_user_idx" ON "access_grants" USING btree ("user_id","capability");--> statement-breakpoint
CREATE INDEX "access_review_items_reviewer_idx" ON "access_review_items" USING btree ("review_id","reviewer_id");--> statement-breakpoint
CREATE UNIQUE INDEX "obligation_completions_due_uq" ON "obligation_completions" USING btree ("obligation_id","due_at");--> statement-breakpoint
CREATE UNIQUE INDEX "obligations_key_uq" ON "obligations" USING btree ("key");--> statement-breakpoint
CREATE INDEX "obligations_due_idx" ON "obligations" USING btree ("next_due_at");