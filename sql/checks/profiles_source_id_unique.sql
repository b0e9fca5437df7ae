-- check: profiles_source_id_unique
-- version: 1
-- severity: error
-- description: a source system never uses one customer id for two profiles
SELECT source, source_customer_id, count(*) AS profiles
FROM profiles
GROUP BY source, source_customer_id
HAVING count(*) > 1
