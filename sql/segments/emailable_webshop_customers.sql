-- segment: emailable_webshop_customers
-- version: 1
-- description: web-shop customers with an e-mail and consent who bought in the last 180 days of data
-- requires: profiles_source_id_unique
WITH bounds AS (
    SELECT max(event_time) AS latest FROM events
),
recent AS (
    SELECT e.customer_id, sum(e.amount) AS spend_180d
    FROM events e
    CROSS JOIN bounds b
    WHERE e.customer_id IS NOT NULL
      AND e.event_time > b.latest - INTERVAL '180 days'
    GROUP BY e.customer_id
)
SELECT p.source_customer_id AS customer_id, p.email, p.given_name, r.spend_180d
FROM profiles p
JOIN recent r ON r.customer_id = p.source_customer_id
WHERE p.source = 'webshop'
  AND p.consent_email
  AND p.email IS NOT NULL
