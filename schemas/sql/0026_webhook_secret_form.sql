-- Webhook secrets carry their form (api/webhooks/secrets.py): 'plain:<secret>' or
-- 'fernet:<token>' (encrypted under SLUICE_WEBHOOKS_SECRET_KEYS). Rows written before were plain.
UPDATE webhooks SET secret = 'plain:' || secret
 WHERE secret IS NOT NULL AND secret NOT LIKE 'plain:%' AND secret NOT LIKE 'fernet:%';
