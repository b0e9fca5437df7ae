-- segment: rfm_tiers
-- version: 1
-- description: every customer who bought in the last 365 days of data, scored 1-5 on recency, frequency and monetary value, with a tier for tailored e-mails
-- requires: events_event_type_accepted, events_amount_consistent
-- Scores are quintiles (ntile) with ties broken by customer_id, so a run is reproducible.
WITH bounds AS (
    SELECT max(event_time) AS latest FROM events
),
per_customer AS (
    SELECT e.customer_id,
           max(CASE WHEN e.event_type = 'purchase' THEN e.event_time END) AS last_purchase,
           count(DISTINCT CASE WHEN e.event_type = 'purchase' THEN e.invoice_no END) AS orders,
           sum(e.amount) AS net_spend
    FROM events e
    CROSS JOIN bounds b
    WHERE e.customer_id IS NOT NULL
      AND e.event_time > b.latest - INTERVAL '365 days'
    GROUP BY e.customer_id
),
scored AS (
    SELECT customer_id, last_purchase, orders, net_spend,
           ntile(5) OVER (ORDER BY last_purchase, customer_id) AS r,
           ntile(5) OVER (ORDER BY orders, customer_id) AS f,
           ntile(5) OVER (ORDER BY net_spend, customer_id) AS m
    FROM per_customer
    WHERE orders > 0
)
SELECT customer_id, r, f, m,
       CASE WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'champions'
            WHEN r >= 3 AND f >= 3 THEN 'loyal'
            WHEN r >= 4 THEN 'promising'
            WHEN f >= 3 THEN 'at_risk'
            ELSE 'hibernating' END AS tier,
       orders, round(net_spend, 2) AS net_spend, last_purchase
FROM scored
