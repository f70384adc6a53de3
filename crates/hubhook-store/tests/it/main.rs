//! Integration tests of hubhook-store.
//!
//! `conformance` holds engine-independent checks, each an `async fn check_xxx(store: &Store)`,
//! so that every backend runs the same ones (the list is `every_check!`); `sqlite` runs them on a
//! fresh SQLite file each and adds what only makes sense for SQLite (raw file contents,
//! reopening the file); `postgres` runs them each in a fresh schema of the machine's
//! PostgreSQL, so they run in parallel, and adds what only makes sense there (many nodes).

mod conformance;
mod console;
mod platform;

/// Every engine-independent check, listed once. Each backend's module defines its own
/// `conformance!` macro (how to make a fresh store, how to clean up) and expands this list with
/// it, so a check added here runs on SQLite and on PostgreSQL alike.
macro_rules! every_check {
    ($backend:ident) => {
        $backend!(
            conformance::check_organizations_and_authentication,
            conformance::check_instance_round_trip,
            conformance::check_claim_exclusivity,
            conformance::check_commit_poll_is_fenced,
            conformance::check_a_poll_that_found_nothing_is_fenced_too,
            conformance::check_commit_poll_is_idempotent,
            conformance::check_commit_poll_writes_everything_together,
            conformance::check_a_new_notification_also_takes_old_events_no_notification_carried,
            conformance::check_finish_attempt_outcomes,
            conformance::check_claim_order_of_notifications,
            conformance::check_delete_instance_keeps_history,
            conformance::check_poll_now,
            conformance::check_poll_now_during_a_running_poll,
            conformance::check_failed_write_is_isolated,
            conformance::check_concurrent_commits_all_land,
            conformance::check_cursor_never_moves_backwards,
            conformance::check_known_events_are_not_notified_again,
            conformance::check_a_new_claim_fences_the_same_owners_old_one,
            conformance::check_renewing_a_poll_lease,
            conformance::check_releasing_a_nodes_leases,
            conformance::check_backlogs,
            conformance::check_next_poll_due_among_leased_and_unleased_jobs,
            conformance::check_a_poll_commits_page_by_page_and_resumes_from_its_checkpoint,
            conformance::check_known_objects_keep_their_last_version_and_deletions,
            conformance::check_known_object_revisions_count_changes_of_state,
            conformance::check_a_held_mass_delete_waits_for_a_decision,
            conformance::check_deferring_a_poll_hands_it_back,
            conformance::check_a_callback_makes_its_jobs_due,
            conformance::check_webhook_secrets_rotate_with_an_overlap,
            conformance::check_replays_belong_to_a_live_instance,
            conformance::check_a_deactivated_subscription_queues_until_redelivery,
            conformance::check_a_notification_given_back_after_a_deactivation_is_queued,
            conformance::check_a_notification_stored_after_a_deactivation_is_queued_not_tried,
            conformance::check_the_pull_feed_pages_in_storage_order,
            conformance::check_pruning_removes_at_most_a_batch,
            conformance::check_claims_share_out_among_instances,
            conformance::check_claims_share_out_among_organizations,
            conformance::check_an_organization_with_slow_posts_takes_no_more_than_its_share,
            conformance::check_a_held_back_backlog_hides_no_organization_at_its_share,
            conformance::check_an_organization_is_not_hidden_by_its_disabled_instance,
            conformance::check_a_disabled_instance_s_notifications_wait_with_their_due_times,
            conformance::check_a_backlog_of_several_parts_is_parked_and_comes_back_whole,
            conformance::check_deleting_an_instance_of_several_parts_cancels_and_forgets_it_all,
            conformance::check_a_redelivery_and_a_replay_of_several_parts_take_every_one,
            conformance::check_a_redelivery_of_several_instances_takes_every_one,
            conformance::check_a_redelivery_leaves_what_was_delivered_meanwhile,
            conformance::check_the_next_due_time_looks_past_a_crowded_head,
            conformance::check_a_claim_behind_a_full_receiver_s_backlog_finds_the_rest,
            conformance::check_a_claim_looks_past_organizations_it_cannot_serve,
            conformance::check_claims_look_up_every_organization_in_turn,
            conformance::check_the_next_claim_walks_on_past_the_bound,
            conformance::check_an_attempt_has_its_row_before_the_post,
            conformance::check_a_batch_begins_its_attempts_and_a_release_removes_its_row,
            conformance::check_results_arriving_together_keep_their_own_answers,
            conformance::check_a_claim_can_begin_its_attempts_in_the_same_write,
            conformance::check_a_stale_result_beside_the_current_one_is_refused,
            platform::check_updating_an_instance_keeps_kept_cursors,
            platform::check_removing_a_resource_of_several_parts_forgets_it_whole,
            platform::check_every_change_of_an_instance_moves_its_version,
            platform::check_an_update_from_a_stale_read_stores_nothing,
            platform::check_a_disabled_instance_neither_polls_nor_delivers,
            platform::check_events_by_organization,
            platform::check_users_sign_in_and_sealed_secrets,
            console::check_delivery_health_and_analytics,
            console::check_ending_a_session,
        );
    };
}
pub(crate) use every_check;

mod postgres;
mod sqlite;
