// Package storetest is the store's contract as a test suite: what every
// engine promises (an atomic batch, each request once per key, the
// cross-references, parking, dead letters, held messages, the disclosure
// chain, statistics kept through retention), run against an engine by
// Run. Each engine's own tests call Run with a function that opens one of
// its stores, new and empty; what only one engine has (its files, its SQL,
// its group commit) stays in that engine's tests.
package storetest

import (
	"testing"

	"github.com/iceshub/iceshub/internal/store"
)

// Run runs the contract suite, one subtest per promise, each on a store
// open returns: new, empty, and closed by the subtest.
func Run(t *testing.T, open func(t *testing.T) store.Engine) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, open func(t *testing.T) store.Engine)
	}{
		{"CommitIsAllOrNothing", testCommitIsAllOrNothing},
		{"AcceptOnceUnderRace", testAcceptOnceUnderRace},
		{"CrossReferenceFindsTheReferralByAnyReference", testCrossReferenceFindsTheReferralByAnyReference},
		{"AcceptEventOnceIsACompareAndSet", testAcceptEventOnceIsACompareAndSet},
		{"RecordedPermissionStandsUntilAnAmendmentBringsOne", testRecordedPermissionStandsUntilAnAmendmentBringsOne},
		{"ParkedLanesOfferOnlyTheirHead", testParkedLanesOfferOnlyTheirHead},
		{"DeliveryStateInOneRead", testDeliveryStateInOneRead},
		{"DeadLetterShowDiscardKeepsEvidence", testDeadLetterShowDiscardKeepsEvidence},
		{"ReplayPublishesSameKeyOnce", testReplayPublishesSameKeyOnce},
		{"ReplayRefusesWhatIsNotADelivery", testReplayRefusesWhatIsNotADelivery},
		{"QueuesAndProbe", testQueuesAndProbe},
		{"ResolveHoldOnceWithItsBatch", testResolveHoldOnceWithItsBatch},
		{"DisclosureChainVerifiesWhenUntouched", testDisclosureChainVerifiesWhenUntouched},
		{"DisclosuresBySubjectAcrossReferrals", testDisclosuresBySubjectAcrossReferrals},
		{"StatisticsCountedWithTheirStep", testStatisticsCountedWithTheirStep},
		{"RetentionKeepsTheStatistics", testRetentionKeepsTheStatistics},
		{"BatchStatsAndPublishedKeys", testBatchStatsAndPublishedKeys},
		{"SeenBeforeFailsOnAClosedStore", testSeenBeforeFailsOnAClosedStore},
		{"OperatorAccounts", testOperatorAccounts},
		{"OperatorRecordChains", testOperatorRecordChains},
		{"ConsoleSessionsLiveAndExpire", testConsoleSessionsLiveAndExpire},
		{"ConsoleSessionsEnd", testConsoleSessionsEnd},
		{"ActivityCountsDeliveriesByPartnerAndHour", testActivityCountsDeliveriesByPartnerAndHour},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, open) })
	}
}

// openWithTopics opens a store with the tables of topics made; it is
// closed when the test ends.
func openWithTopics(t *testing.T, open func(t *testing.T) store.Engine, topics ...string) store.Engine {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { s.Close() })
	if err := s.EnsureTopics(topics...); err != nil {
		t.Fatal(err)
	}
	return s
}
