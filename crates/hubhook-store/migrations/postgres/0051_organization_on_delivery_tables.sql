-- The delivery tables of versions 0020-0029 carry the organization id too (see 0050).
ALTER TABLE delivery_subscriptions ADD COLUMN organization_id BIGINT NOT NULL DEFAULT 0;
UPDATE delivery_subscriptions SET organization_id = COALESCE(
    (SELECT i.organization_id FROM instances i WHERE i.id = delivery_subscriptions.instance_id), 0);
