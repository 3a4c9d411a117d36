-- The default rows of publish_quotas, checked against the platforms' published figures
-- (issue 11), each with its arithmetic and reference in `note`.
--
-- Only a row that still holds exactly what 20261130000100_schema.sql seeded (limit, window,
-- post types and note) is updated: an operator's edit, of any column, is never overwritten.
-- Idempotent: a second run finds no row with the old note.

alter table public.publish_quotas add column if not exists note text;

-- YouTube: Google's quota pages (developers.google.com/youtube/v3/determine_quota_cost and
-- developers.google.com/youtube/v3/guides/quota_and_compliance_audits) now give a project
-- 100 videos.insert calls a day in their own quota bucket, 1 per call, reset at midnight
-- Pacific; the 10,000 units a day are for the other methods. The seeded 100 per rolling 24 h therefore stands
-- (a rolling window of 100 never lets a Pacific day go over 100). The page used to price
-- videos.insert at 1,600 of 10,000 units (6 a day): a project still on that allocation
-- sets max_posts to 6.
update public.publish_quotas
   set note = 'videos.insert per Google Cloud project: 100 calls a day in their own quota '
              'bucket (1 per call), reset at midnight Pacific, so at most 100 in any rolling '
              '24 h (developers.google.com/youtube/v3/determine_quota_cost). A project on '
              'the older unit allocation: 10,000 units a day / 1,600 units per insert = 6.25, '
              'so set max_posts = 6. Raise it to the quota Google granted after an audit.'
 where platform = 'youtube' and scope = 'platform' and post_types is null
   and max_posts = 100 and window_seconds = 86400
   and note = 'videos.insert calls per project per day';

-- Instagram: "Instagram accounts are limited to 100 API-published posts within a 24-hour
-- moving period. Carousels count as a single post", enforced on media_publish
-- (developers.facebook.com/docs/instagram-platform/content-publishing#rate-limit).
update public.publish_quotas
   set note = 'Meta: 100 API-published posts per Instagram professional account within a '
              '24-hour moving period, a carousel counting as 1, enforced on media_publish: '
              '100 per 86,400 s, every post type '
              '(developers.facebook.com/docs/instagram-platform/content-publishing#rate-limit; '
              'GET /<IG_ID>/content_publishing_limit shows the usage)'
 where platform = 'instagram' and scope = 'account' and post_types is null
   and max_posts = 100 and window_seconds = 86400
   and note = 'API-published posts per account per rolling 24 h';

-- Facebook Reels: "Reels API is limited to 30 API-published posts within a 24-hour moving
-- period", enforced on POST /{page_id}/video_reels
-- (developers.facebook.com/docs/video-api/guides/reels-publishing#rate-limit).
update public.publish_quotas
   set note = 'Meta: 30 API-published reels per Page within a 24-hour moving period, enforced '
              'on POST /{page-id}/video_reels: 30 per 86,400 s for posts of type reel '
              '(developers.facebook.com/docs/video-api/guides/reels-publishing). Page videos '
              'published through /{page-id}/videos are not under this limit.'
 where platform = 'facebook' and scope = 'account' and post_types = '{reel}'
   and max_posts = 30 and window_seconds = 86400
   and note = 'Reels per Page per rolling 24 h';

-- LinkedIn gets no row: its daily application and member limits are per endpoint and not
-- published (learn.microsoft.com/linkedin/shared/api-guide/concepts/rate-limits: look them
-- up in the app's Analytics tab); its 429s pause the member or, for an APPLICATION limit,
-- the platform until midnight UTC.

notify pgrst, 'reload schema';
