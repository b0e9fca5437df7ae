-- check: events_not_in_future
-- version: 1
-- severity: error
-- description: no event is stamped later than now (clock or time-zone bugs upstream)
SELECT event_time, invoice_no, customer_id
FROM events
WHERE event_time > now()
