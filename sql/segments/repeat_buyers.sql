-- segment: repeat_buyers
-- version: 1
-- description: customers with purchases on at least 3 different invoices in the last 365 days of data
-- requires: events_amount_consistent
WITH bounds AS (
    SELECT max(event_time) AS latest FROM events
)
SELECT e.customer_id,
       count(DISTINCT e.invoice_no) AS invoices_365d,
       min(e.event_time) AS first_purchase_365d,
       max(e.event_time) AS last_purchase_365d
FROM events e
CROSS JOIN bounds b
WHERE e.customer_id IS NOT NULL
  AND e.event_type = 'purchase'
  AND e.event_time > b.latest - INTERVAL '365 days'
GROUP BY e.customer_id
HAVING count(DISTINCT e.invoice_no) >= 3
