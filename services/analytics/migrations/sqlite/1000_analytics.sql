-- Daily counters: how many of each fact (metric) per dimension value (dim,
-- e.g. a channel or a priority) per local day (YYYY-MM-DD).
CREATE TABLE daily_counts (
    day    TEXT NOT NULL,
    metric TEXT NOT NULL,
    dim    TEXT NOT NULL,
    value  INTEGER NOT NULL,
    PRIMARY KEY (day, metric, dim)
);
CREATE INDEX daily_counts_metric ON daily_counts (metric, day);
