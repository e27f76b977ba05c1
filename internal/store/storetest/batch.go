package storetest

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/iceshub/iceshub/internal/store"
)

func testCommitIsAllOrNothing(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	err := s.Commit(ctx, store.Batch{
		Disclosures: []store.Disclosure{{ReferralID: "r1", Recipient: "provider", Kind: "referral", Fields: []string{"person.name"}, Outcome: store.OutcomeSent}},
		Messages:    []store.TopicMessage{{Topic: "bad topic!", Message: message.NewMessage("1", nil)}},
	})
	if err == nil {
		t.Fatal("a batch with an invalid topic was committed")
	}
	ds, err := s.Disclosures(ctx, "r1")
	if err != nil || len(ds) != 0 {
		t.Fatalf("disclosures after failed commit = %v, %v; want none", ds, err)
	}
}
