CREATE TABLE `alerts` (
	`id` text PRIMARY KEY NOT NULL,
	`dedupe` text NOT NULL,
	`kind` text NOT NULL,
	`run_id` text,
	`text` text NOT NULL,
	`created_at` integer NOT NULL,
	`delivered_at` integer,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `alerts_dedupe_unique` ON `alerts` (`dedupe`);--> statement-breakpoint
CREATE INDEX `alerts_created` ON `alerts` (`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `sync_mismatches` (
	`id` text PRIMARY KEY NOT NULL,
	`run_id` text NOT NULL,
	`entity_key` text NOT NULL,
	`kind` text NOT NULL,
	`field` text,
	`crm_value` text,
	`email_value` text,
	`repair_event_id` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `sync_mismatches_run` ON `sync_mismatches` (`run_id`,`id`);--> statement-breakpoint
CREATE TABLE `sync_records` (
	`run_id` text NOT NULL,
	`side` text NOT NULL,
	`key` text NOT NULL,
	`email` text NOT NULL,
	`data` text NOT NULL,
	PRIMARY KEY(`run_id`, `side`, `key`)
);
--> statement-breakpoint
CREATE INDEX `sync_records_email` ON `sync_records` (`run_id`,`side`,`email`);--> statement-breakpoint
CREATE TABLE `sync_run_pages` (
	`run_id` text NOT NULL,
	`side` text NOT NULL,
	`page` text NOT NULL,
	`records` integer NOT NULL,
	`next` text,
	`successor_sent` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`run_id`, `side`, `page`)
);
--> statement-breakpoint
CREATE TABLE `sync_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`trigger` text NOT NULL,
	`status` text NOT NULL,
	`dry_run` integer NOT NULL,
	`phase` text NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer,
	`crm_records` integer DEFAULT 0 NOT NULL,
	`email_records` integer DEFAULT 0 NOT NULL,
	`crm_scanned` integer DEFAULT false NOT NULL,
	`email_scanned` integer DEFAULT false NOT NULL,
	`mismatches` integer DEFAULT 0 NOT NULL,
	`mismatches_by_kind` text DEFAULT '{}' NOT NULL,
	`repairs_queued` integer DEFAULT 0 NOT NULL,
	`error` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sync_runs_one_running` ON `sync_runs` (`status`) WHERE status = 'running';--> statement-breakpoint
CREATE INDEX `sync_runs_started` ON `sync_runs` (`started_at`,`id`);--> statement-breakpoint
CREATE TABLE `worker_state` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer NOT NULL
);
