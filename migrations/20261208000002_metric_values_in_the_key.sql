-- The table page, the rating page and the exports read a candidate's metric
-- values by (candidate, metric). With the value carried in the key's index
-- they come from the index alone; before, each candidate of a page cost a
-- visit to its heap page as well (15 buffers per row of a table page
-- against 3).
ALTER TABLE candidate_metrics
    DROP CONSTRAINT candidate_metrics_pkey,
    ADD CONSTRAINT candidate_metrics_pkey PRIMARY KEY (candidate_id, metric_id) INCLUDE (value);
