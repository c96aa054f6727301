CREATE TABLE `alert_states` (
	`key` text PRIMARY KEY NOT NULL,
	`active_since` integer,
	`alerted_at` integer,
	`last_alert_at` integer,
	`updated_at` integer NOT NULL
);
