-- segment: top_spenders_90d
-- version: 1
-- description: the 100 customers with the highest net spend in the last 90 days of data
-- requires: events_amount_consistent
WITH bounds AS (
    SELECT max(event_time) AS latest FROM events
)
SELECT e.customer_id,
       sum(e.amount) AS spend_90d,
       count(DISTINCT e.invoice_no) AS invoices_90d
FROM events e
CROSS JOIN bounds b
WHERE e.customer_id IS NOT NULL
  AND e.event_time > b.latest - INTERVAL '90 days'
GROUP BY e.customer_id
ORDER BY spend_90d DESC, e.customer_id
LIMIT 100
