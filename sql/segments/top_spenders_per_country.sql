-- segment: top_spenders_per_country
-- version: 1
-- description: the 10 customers with the highest net spend in each country over the last 365 days of data (a customer counts in the country they spent most in)
-- requires: events_amount_consistent
WITH bounds AS (
    SELECT max(event_time) AS latest FROM events
),
by_country AS (
    SELECT e.customer_id, e.country, sum(e.amount) AS spend
    FROM events e
    CROSS JOIN bounds b
    WHERE e.customer_id IS NOT NULL
      AND e.event_time > b.latest - INTERVAL '365 days'
    GROUP BY e.customer_id, e.country
),
home AS (
    SELECT customer_id, country,
           sum(spend) OVER (PARTITION BY customer_id) AS spend_365d,
           row_number() OVER (PARTITION BY customer_id ORDER BY spend DESC, country) AS pick
    FROM by_country
),
ranked AS (
    SELECT customer_id, country, spend_365d,
           row_number() OVER (PARTITION BY country ORDER BY spend_365d DESC, customer_id) AS country_rank
    FROM home
    WHERE pick = 1
)
SELECT customer_id, country, round(spend_365d, 2) AS spend_365d, country_rank
FROM ranked
WHERE country_rank <= 10
