-- traces/link-prompts (issue 13): prompt versions ("name/version") a trace used. Written by the
-- api; search_traces' ``prompt = 'name/version'`` filter reads it.
CREATE TABLE trace_prompt_links (
    trace_id text NOT NULL,
    prompt   text NOT NULL,    -- "<prompt name>/<version>"
    PRIMARY KEY (trace_id, prompt)
);
CREATE INDEX trace_prompt_links_by_prompt ON trace_prompt_links (prompt);
