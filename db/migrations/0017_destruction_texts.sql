CREATE TABLE "process_texts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"process" text NOT NULL,
	"process_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"body" text NOT NULL,
	"sha256" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "destructions" ALTER COLUMN "reason" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "destructions" ADD COLUMN "reason_text_id" uuid;--> statement-breakpoint
CREATE INDEX "process_texts_process_idx" ON "process_texts" USING btree ("process","process_id");