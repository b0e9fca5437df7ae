-- check: events_amount_consistent
-- version: 1
-- severity: error
-- description: every event's amount is its quantity times its unit price
SELECT event_time, invoice_no, stock_code, quantity, unit_price, amount
FROM events
WHERE abs(amount - quantity * unit_price) > 0.005
