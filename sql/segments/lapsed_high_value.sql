-- segment: lapsed_high_value
-- version: 1
-- description: spent over 500 in the year before the last 90 days of data, bought nothing since
-- requires: events_amount_consistent, events_refunds_negative
WITH bounds AS (
    SELECT max(event_time) AS latest FROM events
),
per_customer AS (
    SELECT e.customer_id,
           sum(CASE WHEN e.event_time > b.latest - INTERVAL '365 days'
                     AND e.event_time <= b.latest - INTERVAL '90 days'
                    THEN e.amount END) AS spend_prior_year,
           max(CASE WHEN e.event_type = 'purchase' THEN e.event_time END) AS last_purchase,
           b.latest
    FROM events e
    CROSS JOIN bounds b
    WHERE e.customer_id IS NOT NULL
    GROUP BY e.customer_id, b.latest
)
SELECT customer_id, spend_prior_year, last_purchase
FROM per_customer
WHERE spend_prior_year > 500
  AND last_purchase <= latest - INTERVAL '90 days'
