-- segment: win_back
-- version: 1
-- description: bought on at least two invoices, last purchase 180 to 365 days before the end of the data: worth a win-back offer
-- requires: events_event_type_accepted
WITH bounds AS (
    SELECT max(event_time) AS latest FROM events
),
per_customer AS (
    SELECT e.customer_id,
           count(DISTINCT e.invoice_no) AS orders,
           max(e.event_time) AS last_purchase,
           sum(e.amount) AS lifetime_spend,
           min(b.latest) AS latest
    FROM events e
    CROSS JOIN bounds b
    WHERE e.customer_id IS NOT NULL
      AND e.event_type = 'purchase'
    GROUP BY e.customer_id
)
SELECT customer_id, orders, last_purchase, round(lifetime_spend, 2) AS lifetime_spend
FROM per_customer
WHERE orders >= 2
  AND last_purchase <= latest - INTERVAL '180 days'
  AND last_purchase > latest - INTERVAL '365 days'
