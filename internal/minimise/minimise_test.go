package minimise

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/model"
)

func fullReferral() model.Referral {
	return model.Referral{
		ID:         "ref-1",
		Source:     model.Source{BundleID: "b-1", MessageID: "m-1", CorrelationID: "c-1"},
		ReceivedAt: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC),
		Person: model.Person{
			NHSNumber: "9990000018",
			Name:      model.HumanName{Text: "Ada Testperson", Given: []string{"Ada"}, Family: "Testperson"},
			BirthDate: "1941-03-07",
			Gender:    "female",
			Address:   model.Address{Lines: []string{"1 Example Row"}, City: "Chester", Postcode: "CH1 4AA"},
			Telecom:   []model.ContactPoint{{System: "phone", Value: "01632 960001"}},
		},
		Requester: model.Requester{PractitionerName: "Sam Therapist", OrganisationODS: "X99XX", OrganisationName: "Example Community Trust",
			Contact: []model.ContactPoint{{System: "email", Value: "sam.therapist@example.nhs.uk"}}},
		Priority:        model.PriorityUrgent,
		DeliverySetting: model.DeliverySetting{Kind: model.SettingHome},
		AccessNotes:     "Key safe by the door",
		Equipment:       []model.EquipmentItem{{Code: "BED-1", Description: "Profiling bed", Quantity: 1}},
		Clinical: model.Clinical{
			Reasons:      []model.Coded{{Display: "Falls"}},
			Conditions:   []model.Coded{{Display: "Osteoarthritis"}},
			Weight:       &model.Observation{Value: "82", Unit: "kg"},
			Observations: []model.Observation{{Code: model.Coded{Display: "Height"}, Value: "165", Unit: "cm"}},
			Notes:        []string{"Recent hip fracture"},
		},
		Event: &model.Event{
			ID: "evt-1", Kind: model.KindComplaint, ReferralID: "ref-1", From: "council-cwac", FromEventID: "c-9",
			OccurredAt: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC), Status: model.StatusScheduled, ScheduledDate: "2026-11-05",
			Reason: model.Coded{Code: "late"}, Description: "Arrived late",
			Complaint: &model.Complaint{Reference: "CMP-1", Council: "council-cwac", Category: "timeliness", Summary: "Late delivery",
				ContactAllowed: true, Contact: []model.ContactPoint{{System: "phone", Value: "01632 960002"}}, Reply: "Sorry"},
		},
	}
}

func TestReferralDeniesByDefault(t *testing.T) {
	full := fullReferral()
	got, err := Referral(&full, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := model.Referral{ID: full.ID, Source: full.Source, ReceivedAt: full.ReceivedAt, Event: model.EventSkeleton(full.Event)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("no fields named, got %+v", got)
	}
	if got.Event.Description != "" || got.Event.Complaint.Summary != "" || len(got.Event.Complaint.Contact) != 0 {
		t.Errorf("event details leaked: %+v", got.Event)
	}
}

// The complainant's contact details go only where the council allowed it,
// whatever the route names.
func TestComplaintContactOnlyWhenAllowed(t *testing.T) {
	full := fullReferral()
	got, err := Referral(&full, []string{"complaint.contact", "complaint.summary"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Event.Complaint.Contact) != 1 || got.Event.Complaint.Summary != "Late delivery" {
		t.Fatalf("allowed contact not copied: %+v", got.Event.Complaint)
	}
	full.Event.Complaint.ContactAllowed = false
	got, err = Referral(&full, []string{"complaint.contact"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Event.Complaint.Contact) != 0 {
		t.Errorf("contact copied although the council did not allow it: %+v", got.Event.Complaint)
	}
}

func TestReferralKeepsOnlyNamedFields(t *testing.T) {
	full := fullReferral()
	got, err := Referral(&full, []string{"person.nhsNumber", "person.postcode", "clinical.weight"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Person.NHSNumber != "9990000018" || got.Person.Address.Postcode != "CH1 4AA" || got.Clinical.Weight == nil {
		t.Errorf("named fields missing: %+v", got)
	}
	if !got.Person.Name.IsZero() || len(got.Person.Address.Lines) != 0 || got.Person.BirthDate != "" ||
		len(got.Clinical.Notes) != 0 || len(got.Clinical.Reasons) != 0 || len(got.Equipment) != 0 || got.AccessNotes != "" {
		t.Errorf("unnamed fields leaked: %+v", got)
	}
}

func TestReferralSharesNothingWithInput(t *testing.T) {
	full := fullReferral()
	got, err := Referral(&full, model.FieldNames())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, full) {
		t.Fatalf("all fields named should copy everything:\n got %+v\nwant %+v", got, full)
	}
	got.Person.Name.Given[0] = "Changed"
	got.Equipment[0].Quantity = 9
	got.Clinical.Weight.Value = "1"
	got.Person.Address.Lines[0] = "changed"
	if full.Person.Name.Given[0] != "Ada" || full.Equipment[0].Quantity != 1 || full.Clinical.Weight.Value != "82" || full.Person.Address.Lines[0] != "1 Example Row" {
		t.Error("the copy shares memory with the full record")
	}
}

func TestReferralUnknownField(t *testing.T) {
	full := fullReferral()
	if _, err := Referral(&full, []string{"person.nickname"}); !errors.Is(err, model.ErrUnknownField) {
		t.Errorf("err = %v, want ErrUnknownField", err)
	}
}

// Every field in the catalogue must copy something: a field whose Copy does
// nothing would silently withhold data a recipient was promised.
func TestEveryCatalogueFieldCopiesSomething(t *testing.T) {
	full := fullReferral()
	empty := model.Referral{ID: full.ID, Source: full.Source, ReceivedAt: full.ReceivedAt, Event: model.EventSkeleton(full.Event)}
	for _, f := range model.ReferralFields() {
		got, err := Referral(&full, []string{f.Name})
		if err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(got, empty) {
			t.Errorf("field %q copied nothing", f.Name)
		}
	}
}
