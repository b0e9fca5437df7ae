-- check: events_refunds_negative
-- version: 1
-- severity: warn
-- description: refund lines take goods back (negative quantity); purchases never do (the real data has one manual refund line, C496350, with quantity 1)
SELECT event_time, event_type, invoice_no, stock_code, quantity
FROM events
WHERE (event_type = 'refund' AND quantity > 0)
   OR (event_type = 'purchase' AND quantity <= 0 AND unit_price > 0 AND customer_id IS NOT NULL)
