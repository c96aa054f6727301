CREATE TABLE `conflicts` (
	`id` text PRIMARY KEY NOT NULL,
	`entity_key` text NOT NULL,
	`field` text NOT NULL,
	`crm_value` text,
	`crm_at` integer,
	`email_value` text,
	`email_at` integer,
	`status` text NOT NULL,
	`resolution` text,
	`resolved_by` text,
	`resolved_at` integer,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `conflicts_status_created` ON `conflicts` (`status`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `contact_emails` (
	`email` text PRIMARY KEY NOT NULL,
	`contact_key` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `contact_emails_contact` ON `contact_emails` (`contact_key`);--> statement-breakpoint
ALTER TABLE `actions` ADD `note` text;