-- check: profiles_email_valid
-- version: 1
-- severity: warn
-- description: e-mail addresses that are present look like addresses (one @, a dotted domain)
SELECT source, source_customer_id, email
FROM profiles
WHERE email IS NOT NULL
  AND NOT regexp_like(email, '^[^@[:space:]]+@[^@[:space:]]+\.[a-z]{2,}$')
