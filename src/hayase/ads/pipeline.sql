-- The ads platform's pipeline (ksqlDB dialect), run by hayase's engine.
-- Inputs (written by the generator, hayase.ads.generator):
--   ad-impressions  key impression_id, record timestamp = impression time
--   ad-clicks       key impression_id (the ad SDK posts the impression it came from),
--                   record timestamp = click time; a re-sent click is an exact copy
--   ad-campaigns    key campaign_id, compacted: the campaign master data (budget in yen)
--   app-events      key user_id (read by the segment updater, not by SQL)
-- Every output topic is named (KAFKA_TOPIC) so that hayase.ads.pipeline_sql(prefix) can
-- give a run its own topics. Every aggregation groups by the topic's key (impression_id, campaign_id), so no query
-- needs a repartition topic.

CREATE STREAM impressions (impression_id STRING KEY, ad_id STRING, campaign_id STRING,
    user_id STRING, placement STRING, cpc BIGINT)
  WITH (KAFKA_TOPIC='ad-impressions', VALUE_FORMAT='JSON', PARTITIONS=3);

CREATE STREAM clicks (impression_id STRING KEY, click_id STRING, user_id STRING)
  WITH (KAFKA_TOPIC='ad-clicks', VALUE_FORMAT='JSON', PARTITIONS=3);

-- The Kappa idea: the campaign table is a view of a compacted log.
CREATE TABLE campaigns (campaign_id STRING PRIMARY KEY, name STRING, budget BIGINT)
  WITH (KAFKA_TOPIC='ad-campaigns', VALUE_FORMAT='JSON', PARTITIONS=3);

-- Attribution: a click counts when its impression was shown at most an hour before or after.
CREATE STREAM click_matches WITH (KAFKA_TOPIC='CLICK_MATCHES') AS
  SELECT i.impression_id AS impression_id, c.click_id AS click_id, i.ad_id AS ad_id,
         i.campaign_id AS campaign_id, i.cpc AS cpc, c.ROWTIME AS click_ts
  FROM clicks c JOIN impressions i WITHIN 1 HOUR ON c.impression_id = i.impression_id
  EMIT CHANGES;

-- Duplicates removed (ksqlDB's "distinct events" recipe): the first match of an impression
-- passes HAVING; a second one turns the row into a tombstone, which the next stream drops.
CREATE TABLE attributed_by_impression WITH (KAFKA_TOPIC='ATTRIBUTED_BY_IMPRESSION') AS
  SELECT impression_id, EARLIEST_BY_OFFSET(click_id) AS click_id,
         EARLIEST_BY_OFFSET(ad_id) AS ad_id, EARLIEST_BY_OFFSET(campaign_id) AS campaign_id,
         EARLIEST_BY_OFFSET(cpc) AS cpc, EARLIEST_BY_OFFSET(click_ts) AS click_ts
  FROM click_matches GROUP BY impression_id HAVING COUNT(*) = 1 EMIT CHANGES;

CREATE STREAM attributed_raw (impression_id STRING KEY, click_id STRING, ad_id STRING,
    campaign_id STRING, cpc BIGINT, click_ts BIGINT)
  WITH (KAFKA_TOPIC='ATTRIBUTED_BY_IMPRESSION', VALUE_FORMAT='JSON', TIMESTAMP='CLICK_TS');

CREATE STREAM attributed_clicks WITH (KAFKA_TOPIC='ATTRIBUTED_CLICKS') AS
  SELECT campaign_id, impression_id, click_id, ad_id, cpc, click_ts
  FROM attributed_raw WHERE click_id IS NOT NULL PARTITION BY campaign_id EMIT CHANGES;

-- CTR per campaign per minute: impressions and attributed clicks merged into one stream.
CREATE STREAM ad_events WITH (KAFKA_TOPIC='AD_EVENTS', PARTITIONS=3) AS
  SELECT campaign_id, 1 AS impressions, 0 AS clicks FROM impressions
  PARTITION BY campaign_id EMIT CHANGES;

INSERT INTO ad_events
  SELECT campaign_id, 0 AS impressions, 1 AS clicks FROM attributed_clicks EMIT CHANGES;

CREATE TABLE ctr_per_minute WITH (KAFKA_TOPIC='CTR_PER_MINUTE') AS
  SELECT campaign_id, SUM(impressions) AS impressions, SUM(clicks) AS clicks,
         CAST(SUM(clicks) AS DOUBLE) / SUM(impressions) AS ctr
  FROM ad_events WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY campaign_id EMIT CHANGES;

-- Spend per campaign (pay per click) against its budget.
CREATE TABLE spend WITH (KAFKA_TOPIC='SPEND') AS
  SELECT campaign_id, SUM(cpc) AS spend, COUNT(*) AS clicks
  FROM attributed_clicks GROUP BY campaign_id EMIT CHANGES;

CREATE TABLE spend_vs_budget WITH (KAFKA_TOPIC='SPEND_VS_BUDGET') AS
  SELECT s.campaign_id AS campaign_id, c.name AS name, s.spend AS spend, s.clicks AS clicks,
         c.budget AS budget
  FROM spend s JOIN campaigns c ON s.campaign_id = c.campaign_id EMIT CHANGES;

CREATE STREAM spend_changes (campaign_id STRING KEY, name STRING, spend BIGINT,
    clicks BIGINT, budget BIGINT)
  WITH (KAFKA_TOPIC='SPEND_VS_BUDGET', VALUE_FORMAT='JSON');

-- An alert each time a campaign's spend changes while at or above 90% of its budget.
CREATE STREAM budget_alerts WITH (KAFKA_TOPIC='BUDGET_ALERTS') AS
  SELECT campaign_id, name, spend, budget FROM spend_changes
  WHERE spend IS NOT NULL AND spend * 10 >= budget * 9 EMIT CHANGES;

-- Top ads per hour: attributed clicks per ad in a one-hour window every ten minutes
-- (per campaign, as a histogram; the dashboard ranks them).
CREATE TABLE top_ads_hourly WITH (KAFKA_TOPIC='TOP_ADS_HOURLY') AS
  SELECT campaign_id, HISTOGRAM(ad_id) AS ad_clicks, COUNT(*) AS clicks
  FROM attributed_clicks WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 10 MINUTES)
  GROUP BY campaign_id EMIT CHANGES;
