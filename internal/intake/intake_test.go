package intake

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/model"
)

type fakeStore struct {
	keys  []string
	topic string
	msg   *message.Message
	err   error
}

func (f *fakeStore) AcceptOnce(_ context.Context, keys []string, resp Response, topic string, msg *message.Message, _ *Record) (Response, bool, error) {
	f.keys, f.topic, f.msg = keys, topic, msg
	return resp, false, f.err
}

func TestAcceptReferralPublishesTheReferralWithItsIDs(t *testing.T) {
	st := &fakeStore{}
	svc, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	ref := model.Referral{ID: "ref-1", Source: model.Source{CorrelationID: "corr-1"}, Person: model.Person{NHSNumber: "9990000018"}}
	out, err := svc.AcceptReferral(context.Background(), Submission{Keys: []string{"request:a"}, Referral: ref, Response: Response{Status: 200}})
	if err != nil || out.Duplicate || out.Response.Status != 200 {
		t.Fatalf("AcceptReferral = %+v, %v", out, err)
	}
	if st.topic != TopicReferralReceived || st.msg.UUID != "ref-1" || len(st.keys) != 1 {
		t.Fatalf("published to %q as %q with keys %v", st.topic, st.msg.UUID, st.keys)
	}
	if st.msg.Metadata.Get(MetaKind) != "referral" || st.msg.Metadata.Get(MetaCorrelationID) != "corr-1" || st.msg.Metadata.Get(MetaReferralID) != "ref-1" {
		t.Errorf("metadata %v", st.msg.Metadata)
	}
	var got model.Referral
	if err := json.Unmarshal(st.msg.Payload, &got); err != nil || got.Person.NHSNumber != "9990000018" {
		t.Errorf("payload is not the referral: %v %+v", err, got)
	}
}

func TestAcceptReferralRefusesWhatCannotBeDeduplicated(t *testing.T) {
	svc, _ := New(&fakeStore{})
	if _, err := svc.AcceptReferral(context.Background(), Submission{Referral: model.Referral{ID: "r"}}); !errors.Is(err, ErrNoKeys) {
		t.Errorf("no keys: %v", err)
	}
	if _, err := svc.AcceptReferral(context.Background(), Submission{Keys: []string{"k"}}); !errors.Is(err, ErrNoKeys) {
		t.Errorf("no referral id: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

func TestAcceptReferralWrapsStoreFailure(t *testing.T) {
	boom := errors.New("disk full")
	svc, _ := New(&fakeStore{err: boom})
	if _, err := svc.AcceptReferral(context.Background(), Submission{Keys: []string{"k"}, Referral: model.Referral{ID: "r"}}); !errors.Is(err, boom) {
		t.Errorf("err = %v, want wrapping %v", err, boom)
	}
}
