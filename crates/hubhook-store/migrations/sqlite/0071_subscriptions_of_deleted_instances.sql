-- Deleting an instance left its subscription's deactivation behind (a row per instance deleted
-- while its deliveries were stopped), and every delivery claim walks this table. Deletes now
-- take the row with the instance; this removes the ones left before.
DELETE FROM delivery_subscriptions WHERE instance_id NOT IN (SELECT id FROM instances);
