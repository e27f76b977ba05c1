package intake

import (
	"errors"
	"testing"

	"github.com/iceshub/iceshub/internal/model"
)

func TestMayTouchIsOneRuleForEveryKindOfSender(t *testing.T) {
	rec := Record{
		Referral: model.Referral{
			Source:    model.Source{SentBy: "trust-a", SenderODS: "Y9Z01"},
			Requester: model.Requester{OrganisationODS: "Y9Z02"},
		},
		Refs:        model.References{Council: "council-cwac"},
		OrderSentTo: "provider",
	}
	for _, c := range []struct {
		name string
		s    Sender
		ok   bool
	}{
		{"the nhs partner that sent it", Sender{Partner: "trust-a", Kind: SenderNHS, ODSCodes: []string{"X1"}}, true},
		{"an nhs partner speaking for the sender", Sender{Partner: "trust-c", Kind: SenderNHS, ODSCodes: []string{"y9z01"}}, true},
		{"an nhs partner speaking for the requester", Sender{Partner: "trust-d", Kind: SenderNHS, ODSCodes: []string{"Y9Z02"}}, true},
		{"another nhs partner", Sender{Partner: "trust-b", Kind: SenderNHS, ODSCodes: []string{"Y9Z09"}}, false},
		{"another nhs partner without codes", Sender{Partner: "trust-b", Kind: SenderNHS}, false},
		{"the provider it was sent to", Sender{Partner: "provider", Kind: SenderProvider}, true},
		{"another provider", Sender{Partner: "provider-2", Kind: SenderProvider}, false},
		{"the council of the area", Sender{Partner: "council-cwac", Kind: SenderCouncil}, true},
		{"another council", Sender{Partner: "council-ceast", Kind: SenderCouncil}, false},
		{"a partner of no known kind", Sender{Partner: "x", Kind: "commissioner"}, false},
		{"insecure development mode", Sender{Partner: "insecure-dev"}, true},
	} {
		err := c.s.MayTouch(rec)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrNotYours)) {
			t.Errorf("%s: %v, want allowed %v", c.name, err, c.ok)
		}
	}
	// Nothing recorded is nobody's: an order not sent yet is no provider's,
	// a referral without a council no council's, one without a sender no
	// partner's but its organisations'.
	empty := Record{}
	for _, s := range []Sender{{Partner: "provider", Kind: SenderProvider}, {Partner: "council-cwac", Kind: SenderCouncil}, {Partner: "trust-a", Kind: SenderNHS, ODSCodes: []string{"Y9Z01"}}} {
		if s.MayTouch(empty) == nil {
			t.Errorf("%+v may touch a referral that records nothing", s)
		}
	}
}

func TestMayCreateOnlyForTheSendersOrganisations(t *testing.T) {
	a := Sender{Partner: "trust-a", Kind: SenderNHS, ODSCodes: []string{"Y9Z01", "Y9Z02"}}
	for _, c := range []struct {
		sender, requester string
		ok                bool
	}{
		{"Y9Z01", "Y9Z02", true},
		{"Y9Z01", "", true},
		{"", "y9z02", true},
		{"", "", true},
		{"Y9Z09", "Y9Z01", false},
		{"Y9Z01", "Y9Z09", false},
	} {
		if err := a.MayCreate(c.sender, c.requester); (err == nil) != c.ok {
			t.Errorf("sender %q requester %q: %v, want allowed %v", c.sender, c.requester, err, c.ok)
		}
	}
	if err := (Sender{Partner: "provider", Kind: SenderProvider}).MayCreate("", ""); err == nil {
		t.Error("a provider may create referrals")
	}
}
