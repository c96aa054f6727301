CREATE TABLE `actions` (
	`event_id` text NOT NULL,
	`action` text NOT NULL,
	`flow` text NOT NULL,
	`entity_key` text,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`last_status` integer,
	`next_attempt_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`event_id`, `action`)
);
--> statement-breakpoint
CREATE TABLE `audit_log` (
	`id` integer PRIMARY KEY NOT NULL,
	`event_id` text,
	`entity_key` text,
	`action` text,
	`connector` text NOT NULL,
	`method` text NOT NULL,
	`url` text NOT NULL,
	`request_body` text,
	`status` integer,
	`response_body` text,
	`duration_ms` integer NOT NULL,
	`attempt` integer NOT NULL,
	`outcome` text NOT NULL,
	`error` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_created` ON `audit_log` (`created_at`);--> statement-breakpoint
CREATE INDEX `audit_event` ON `audit_log` (`event_id`);--> statement-breakpoint
CREATE TABLE `dead_letters` (
	`id` text PRIMARY KEY NOT NULL,
	`event_id` text NOT NULL,
	`action` text,
	`source` text NOT NULL,
	`reason` text NOT NULL,
	`body` text,
	`created_at` integer NOT NULL,
	`replayed_at` integer,
	`replay_count` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `dead_letters_created` ON `dead_letters` (`created_at`);--> statement-breakpoint
CREATE INDEX `dead_letters_event` ON `dead_letters` (`event_id`);--> statement-breakpoint
CREATE TABLE `events` (
	`id` text PRIMARY KEY NOT NULL,
	`source` text NOT NULL,
	`type` text NOT NULL,
	`dedupe_key` text NOT NULL,
	`entity_key` text,
	`delivery_id` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`duplicates` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`received_at` integer NOT NULL,
	`occurred_at` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `events_received` ON `events` (`received_at`);--> statement-breakpoint
CREATE INDEX `events_status_received` ON `events` (`status`,`received_at`);