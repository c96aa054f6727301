CREATE TABLE `metrics_minutes` (
	`connector` text NOT NULL,
	`minute` integer NOT NULL,
	`calls` integer NOT NULL,
	`errors` integer NOT NULL,
	`sum_ms` integer NOT NULL,
	`le_10` integer NOT NULL,
	`le_25` integer NOT NULL,
	`le_50` integer NOT NULL,
	`le_100` integer NOT NULL,
	`le_250` integer NOT NULL,
	`le_500` integer NOT NULL,
	`le_1000` integer NOT NULL,
	`le_2500` integer NOT NULL,
	`le_5000` integer NOT NULL,
	`le_10000` integer NOT NULL,
	`le_inf` integer NOT NULL,
	PRIMARY KEY(`connector`, `minute`)
);
--> statement-breakpoint
CREATE INDEX `metrics_minutes_minute` ON `metrics_minutes` (`minute`);