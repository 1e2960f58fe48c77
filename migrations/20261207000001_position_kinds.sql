-- The kinds of extra position on record ("deep", "forced", ...), for the
-- table form's menu. Reading them from candidate_positions took a scan of a
-- sample (1 ms a table page at a million candidates) and could miss a rare
-- kind; this list is exact and a few rows long. Kinds are added as positions
-- arrive; one whose positions are all gone stays listed (filtering by it
-- then finds nothing).
CREATE TABLE position_kinds (
    kind text PRIMARY KEY
);

INSERT INTO position_kinds (kind)
SELECT DISTINCT kind FROM candidate_positions;

CREATE FUNCTION note_position_kinds() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO position_kinds (kind)
    SELECT DISTINCT kind FROM arrived
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER candidate_positions_note_kinds
    AFTER INSERT ON candidate_positions
    REFERENCING NEW TABLE AS arrived
    FOR EACH STATEMENT EXECUTE FUNCTION note_position_kinds();
