ALTER TABLE `actions` ADD `claim_token` text;--> statement-breakpoint
ALTER TABLE `events` ADD `payload_ref` text;--> statement-breakpoint
ALTER TABLE `events` ADD `replayed_at` integer;