-- Each trace's TraceInfo JSON, stored: traces/search answers with it (api/traces/store.py adds
-- the assessments and the closing brace). Rendering 100 rows at read time was half of a
-- newest-first page's PostgreSQL time over 1M traces (~0.7 of ~1.4 ms); as a generated column
-- it is rendered once per INSERT or UPDATE of the row, and every writer of trace_info (the
-- writer's merge, the api's tag changes, tests) keeps it current without knowing of it.
--
-- The document is schemas/trace_json.trace_info_json's without "assessments" and the final
-- "}" (tests/integration/test_trace_search_json.py compares them): protobuf's JSON of the
-- Timestamp (UTC, ".mmm" only when the milliseconds are not 0, floor division before 1970) and
-- of the Duration ("[-]S[.mmm]s"), optional fields left out when unset.
--
-- IMMUTABLE holds for this body although to_char and to_json are only STABLE in general: the
-- format has no locale-dependent (TM) field, the time zone is fixed, and to_json of text and
-- the jsonb text form depend on no setting. plpgsql, not SQL: an IMMUTABLE SQL function whose
-- body calls STABLE ones is not inlined, and its per-row call cost 3x plpgsql's.
CREATE FUNCTION trace_info_doc(
    trace_id text,
    experiment_id bigint,
    request_time_ms bigint,
    execution_ms bigint,
    state text,
    client_request_id text,
    metadata jsonb,
    tags jsonb,
    request_preview text,
    response_preview text
) RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    frac bigint := (request_time_ms % 1000 + 1000) % 1000;
BEGIN
    RETURN '{"trace_id":' || to_json(trace_id)::text
        || ',"trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"'
        || experiment_id::text || '"}}'
        || ',"request_time":"'
        || to_char(to_timestamp(((request_time_ms - frac) / 1000)::double precision)
                   AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN frac = 0 THEN '' ELSE '.' || lpad(frac::text, 3, '0') END || 'Z"'
        || CASE WHEN execution_ms IS NULL THEN ''
                ELSE ',"execution_duration":"'
                     || CASE WHEN execution_ms < 0 THEN '-' ELSE '' END
                     || (abs(execution_ms) / 1000)::text
                     || CASE WHEN abs(execution_ms) % 1000 = 0 THEN ''
                             ELSE '.' || lpad((abs(execution_ms) % 1000)::text, 3, '0') END
                     || 's"' END
        || ',"state":' || to_json(state)::text
        || CASE WHEN client_request_id <> '' THEN ',"client_request_id":'
                     || to_json(client_request_id)::text ELSE '' END
        || CASE WHEN metadata <> '{}'::jsonb THEN ',"trace_metadata":' || metadata::text
                ELSE '' END
        || CASE WHEN tags <> '{}'::jsonb THEN ',"tags":' || tags::text ELSE '' END
        || CASE WHEN request_preview IS NOT NULL THEN ',"request_preview":'
                     || to_json(request_preview)::text ELSE '' END
        || CASE WHEN response_preview IS NOT NULL THEN ',"response_preview":'
                     || to_json(response_preview)::text ELSE '' END;
END
$$;

-- Rewrites trace_info once (every existing row is rendered).
ALTER TABLE trace_info ADD COLUMN info_doc text GENERATED ALWAYS AS (
    trace_info_doc(trace_id, experiment_id, request_time_ms, execution_ms, state,
                   client_request_id, metadata, tags, request_preview, response_preview)
) STORED;
