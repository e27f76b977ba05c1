package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/audit"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
	"github.com/iceshub/iceshub/routes"
)

const heldTestToken = "fictional-admin-token-for-held-tests-of-32-bytes"

// openHoldOf waits for the open hold of referral id and returns it.
func openHoldOf(t *testing.T, o *opsHub, id string) store.Hold {
	t.Helper()
	var found store.Hold
	eventually(t, "the hold of "+id, func() bool {
		hs, err := o.hub.Store().Held(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			if h.ReferralID == id {
				found = h
				return true
			}
		}
		return false
	})
	return found
}

// TestHeldReferralRoutedThroughAdminAPI: a referral whose postcode no
// council covers is held; a viewer without the admin token cannot act on
// it; routed through the admin API to Cheshire West and Chester it reaches
// that council's case system under the fan-out's key, its disclosure is in
// the subject access report, and the council is the referral's from then
// on; resolving it again is refused; the held command is refused while the
// hub runs and, once it is stopped, closes another hold, sending nothing.
//
// Longer than 100 lines: a held referral from arrival to its council's case, through each refusal
// the admin API must make on the way.
func TestHeldReferralRoutedThroughAdminAPI(t *testing.T) {
	t.Setenv(subject.EnvKey, "") // the key file the hub generates in its data directory
	o := startOpsHub(t, opsHubConfig{adminToken: heldTestToken})
	status, answer, err := o.sims.PostBundle(t.Context(), o.base, mustRead(t, "../../testdata/fhir/referral-no-council.json"))
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST = %d, %v\n%s", status, err, answer)
	}
	id := demo.ReferralIDFrom(answer)
	hold := openHoldOf(t, o, id)
	if hold.Route != config.RecipientCouncil || hold.Reason != routes.HoldNoCouncil {
		t.Fatalf("hold %+v", hold)
	}
	url := fmt.Sprintf("%s/admin/held/%d/", o.base, hold.ID)
	routeBody := `{"by": "Service Desk A. Example", "reason": "the person lives in Chester now", "council": "council-cwac"}`

	// No token, a wrong one: 401, nothing decided.
	for _, action := range []string{"route", "release", "close"} {
		for _, bad := range []string{"", "viewer-without-the-admin-token"} {
			if code, body := adminCall(t, http.MethodPost, url+action, bad, routeBody); code != http.StatusUnauthorized {
				t.Errorf("POST %s with token %q = %d %s, want 401", action, bad, code, body)
			}
		}
	}
	if hs, _ := o.hub.Store().Held(t.Context()); len(hs) != 1 {
		t.Fatalf("holds after refused requests: %+v", hs)
	}
	for body, want := range map[string]int{
		`{"by": "x", "council": "council-cwac"}`:                            http.StatusBadRequest, // no reason
		`{"reason": "r", "council": "council-cwac"}`:                        http.StatusBadRequest, // no one
		`{"by": "x", "reason": "r"}`:                                        http.StatusBadRequest, // no council
		`{"by": "x", "reason": "r", "council": "nobody"}`:                   http.StatusUnprocessableEntity,
		`{"by": "x", "reason": "r", "council": "provider"}`:                 http.StatusUnprocessableEntity,
		`{"by": "x", "reason": "r", "council": "council-cwac", "extra": 1}`: http.StatusBadRequest,
	} {
		if code, answer := adminCall(t, http.MethodPost, url+"route", heldTestToken, body); code != want {
			t.Errorf("route %s = %d %s, want %d", body, code, answer, want)
		}
	}
	if code, answer := adminCall(t, http.MethodPost, url+"release", heldTestToken,
		`{"by": "x", "permissionRecordedBy": "OT B. Example", "evidence": "CF-1"}`); code != http.StatusUnprocessableEntity {
		t.Errorf("release of a no-council hold = %d %s, want 422", code, answer)
	}
	if n := len(o.sims.Councils["council-cwac"].Received()); n != 0 {
		t.Fatalf("Cheshire West received %d requests before the hold was routed", n)
	}

	code, answer := adminCall(t, http.MethodPost, url+"route", heldTestToken, routeBody)
	var res routes.Resolved
	if err := json.Unmarshal(answer, &res); code != http.StatusOK || err != nil {
		t.Fatalf("route = %d %s (%v)", code, answer, err)
	}
	key := routes.IdempotencyKey(id, "council-cwac", model.KindReferral)
	if res.Action != store.ActionRouted || res.Recipient != "council-cwac" || len(res.IdempotencyKeys) != 1 || res.IdempotencyKeys[0] != key {
		t.Errorf("route answered %+v, want one copy for council-cwac under %s", res, key)
	}
	var caseBody []byte
	eventually(t, "Cheshire West's case", func() bool {
		var ok bool
		caseBody, ok = o.sims.Received("council-cwac", key)
		return ok
	})
	full := readCanonical(t, "referral-no-council.json")
	if !bytes.Contains(caseBody, []byte(full.Person.NHSNumber)) || bytes.Contains(caseBody, []byte(full.Equipment[0].Code)) {
		t.Errorf("the council's case is not cut by the council route: %s", caseBody)
	}
	eventually(t, "the sent disclosure", func() bool {
		ds, _ := o.hub.Store().Disclosures(t.Context(), id)
		for _, d := range ds {
			if d.Recipient == "council-cwac" && d.Outcome == store.OutcomeSent {
				return true
			}
		}
		return false
	})
	rec, found, err := o.hub.Store().FindReferral(t.Context(), intake.Lookup{ReferralID: id})
	if err != nil || !found || rec.Refs.Council != "council-cwac" {
		t.Errorf("the referral's council = %q (%v, %v)", rec.Refs.Council, found, err)
	}

	// Decided once.
	for _, action := range []string{"route", "close"} {
		if code, answer := adminCall(t, http.MethodPost, url+action, heldTestToken, routeBody); code != http.StatusConflict {
			t.Errorf("%s of a routed hold = %d %s, want 409", action, code, answer)
		}
	}
	if code, body := adminCall(t, http.MethodGet, o.base+"/admin/held", heldTestToken, ""); code != http.StatusOK || !strings.Contains(string(body), `"held":[]`) {
		t.Errorf("GET /admin/held after routing = %d %s", code, body)
	}
	code, body := adminCall(t, http.MethodGet, o.base+"/admin/held?all=true", heldTestToken, "")
	if code != http.StatusOK || !strings.Contains(string(body), `"by":"admin-api:Service Desk A. Example"`) ||
		!strings.Contains(string(body), `"reason":"the person lives in Chester now"`) {
		t.Errorf("GET /admin/held?all=true = %d %s", code, body)
	}

	// The subject access report shows the disclosure.
	var out, errOut strings.Builder
	if code := run([]string{"audit", "subject", "--nhs-number", full.Person.NHSNumber, "--json", "--data", o.dir}, &out, &errOut); code != 0 {
		t.Fatalf("audit subject = %d\n%s", code, errOut.String())
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	sent := false
	for _, d := range rep.Disclosures {
		sent = sent || (d.ReferralID == id && d.Recipient == "council-cwac" && d.Outcome == store.OutcomeSent && len(d.Fields) > 0)
	}
	if !sent {
		t.Errorf("audit subject lacks the routed copy's disclosure: %+v", rep.Disclosures)
	}

	// A second referral no council covers, closed with the command.
	second := o.send(t, bytes.ReplaceAll(referralTemplate(t), []byte("CH1 4QX"), []byte("LS10 3ZQ")))
	hold2 := openHoldOf(t, o, second)
	out.Reset()
	errOut.Reset()
	args := []string{"held", "close", fmt.Sprint(hold2.ID), "--by", "cli:desk", "--reason", "sent to us in error", "--data", o.dir}
	if code := run(args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "/admin/held/{id}/close") {
		t.Errorf("held close while the hub runs = %d\n%s%s", code, out.String(), errOut.String())
	}
	if strings.Contains(o.logs.String(), full.Person.NHSNumber) {
		t.Error("the hub's log holds the NHS number")
	}
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}
	before := len(o.sims.Councils["council-cwac"].Received()) + len(o.sims.Councils["council-ceast"].Received())
	out.Reset()
	errOut.Reset()
	if code := run(args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "closed; nothing sent") {
		t.Fatalf("held close = %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run(args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already resolved") {
		t.Errorf("second held close = %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"held", "list", "--all", "--data", o.dir}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "closed by cli:desk") || !strings.Contains(out.String(), "routed by admin-api:Service Desk A. Example to council-cwac") {
		t.Errorf("held list --all = %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"held", "list", "--data", o.dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "nothing held") {
		t.Errorf("held list = %d\n%s", code, out.String())
	}
	if after := len(o.sims.Councils["council-cwac"].Received()) + len(o.sims.Councils["council-ceast"].Received()); after != before {
		t.Errorf("closing sent %d requests to councils", after-before)
	}
}

// TestPermissionHeldCopyReleasedThroughAdminAPI: with the council route
// requiring the person's express permission, a referral without it has its
// council copy held; released through the admin API once an operator
// records the permission, it reaches the council, the permission record
// kept with the resolution; another is closed with a reason, nothing sent.
func TestPermissionHeldCopyReleasedThroughAdminAPI(t *testing.T) {
	o := startOpsHub(t, opsHubConfig{adminToken: heldTestToken, mutate: func(cfg *config.Config) {
		for i, r := range cfg.Routes {
			if r.Message == string(model.KindReferral) && r.To == config.RecipientCouncil {
				cfg.Routes[i].RequiresPermission = true
			}
		}
	}})
	template := referralTemplate(t)
	id, other := o.send(t, template), o.send(t, template)
	hold, hold2 := openHoldOf(t, o, id), openHoldOf(t, o, other)
	if hold.Route != "council-cwac" || hold.Reason != routes.HoldNoPermission {
		t.Fatalf("hold %+v", hold)
	}
	url := fmt.Sprintf("%s/admin/held/%d/", o.base, hold.ID)
	if code, answer := adminCall(t, http.MethodPost, url+"release", heldTestToken, `{"by": "desk", "evidence": "CF-0042"}`); code != http.StatusBadRequest {
		t.Errorf("release without who recorded the permission = %d %s", code, answer)
	}
	if code, answer := adminCall(t, http.MethodPost, url+"route", heldTestToken, `{"by": "desk", "reason": "r", "council": "council-ceast"}`); code != http.StatusUnprocessableEntity {
		t.Errorf("route of a permission hold = %d %s", code, answer)
	}
	if code, answer := adminCall(t, http.MethodPost, url+"release", "", `{"by": "desk", "permissionRecordedBy": "OT", "evidence": "CF-0042"}`); code != http.StatusUnauthorized {
		t.Errorf("release without the token = %d %s", code, answer)
	}
	code, answer := adminCall(t, http.MethodPost, url+"release", heldTestToken,
		`{"by": "Service Desk C. Example", "reason": "signed Shared Agreement received", "permissionRecordedBy": "OT D. Example", "permissionRecordedAt": "2026-12-01", "evidence": "shared agreement form SA-0042"}`)
	if code != http.StatusOK {
		t.Fatalf("release = %d %s", code, answer)
	}
	key := routes.IdempotencyKey(id, "council-cwac", model.KindReferral)
	eventually(t, "the released case", func() bool {
		_, ok := o.sims.Received("council-cwac", key)
		return ok
	})
	all, err := o.hub.Store().AllHeld(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var r *store.HoldResolution
	for _, h := range all {
		if h.ID == hold.ID {
			r = h.Resolution
		}
	}
	if r == nil || r.Action != store.ActionReleased || r.By != "admin-api:Service Desk C. Example" || r.Permission == nil ||
		r.Permission.RecordedBy != "OT D. Example" || r.Permission.Evidence != "shared agreement form SA-0042" ||
		!r.Permission.RecordedAt.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("resolution %+v", r)
	}
	if code, answer := adminCall(t, http.MethodPost, url+"release", heldTestToken,
		`{"by": "desk", "permissionRecordedBy": "OT", "evidence": "CF-1"}`); code != http.StatusConflict {
		t.Errorf("second release = %d %s, want 409", code, answer)
	}

	// The other is closed: recorded, nothing sent.
	url2 := fmt.Sprintf("%s/admin/held/%d/close", o.base, hold2.ID)
	if code, answer := adminCall(t, http.MethodPost, url2, heldTestToken, `{"by": "desk"}`); code != http.StatusBadRequest {
		t.Errorf("close without a reason = %d %s", code, answer)
	}
	if code, answer := adminCall(t, http.MethodPost, url2, heldTestToken, `{"by": "desk", "reason": "the person declined to share"}`); code != http.StatusOK {
		t.Fatalf("close = %d %s", code, answer)
	}
	if code, answer := adminCall(t, http.MethodPost, url2, heldTestToken, `{"by": "desk", "reason": "again"}`); code != http.StatusConflict {
		t.Errorf("second close = %d %s, want 409", code, answer)
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok := o.sims.Received("council-cwac", routes.IdempotencyKey(other, "council-cwac", model.KindReferral)); ok {
		t.Error("a closed hold reached the council")
	}
	if hs, _ := o.hub.Store().Held(t.Context()); len(hs) != 0 {
		t.Errorf("holds still listed: %+v", hs)
	}
}

// TestAReleasedPermissionCoversTheCancellation: with the council's routes
// for referrals and cancellations both requiring the person's express
// permission, the referral's council copy is held, released through the
// admin API, and the NHS's later cancellation reaches the council's case
// as a note with no hold of its own: the permission was recorded with the
// referral.
func TestAReleasedPermissionCoversTheCancellation(t *testing.T) {
	o := startOpsHub(t, opsHubConfig{adminToken: heldTestToken, mutate: func(cfg *config.Config) {
		for i, r := range cfg.Routes {
			if (r.Message == string(model.KindReferral) || r.Message == string(model.KindCancellation)) && r.To == config.RecipientCouncil {
				cfg.Routes[i].RequiresPermission = true
			}
		}
	}})
	post := func(file string) string {
		t.Helper()
		status, answer, err := o.sims.PostBundle(t.Context(), o.base, mustRead(t, "../../testdata/fhir/"+file))
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v\n%s", file, status, err, answer)
		}
		return demo.ReferralIDFrom(answer)
	}
	id := post("referral-1-line.json")
	hold := openHoldOf(t, o, id)
	code, answer := adminCall(t, http.MethodPost, fmt.Sprintf("%s/admin/held/%d/release", o.base, hold.ID), heldTestToken,
		`{"by": "desk", "permissionRecordedBy": "OT D. Example", "evidence": "shared agreement form SA-0042"}`)
	if code != http.StatusOK {
		t.Fatalf("release = %d %s", code, answer)
	}
	council := o.sims.Councils["council-cwac"]
	eventually(t, "the council's case", func() bool { return len(council.Cases()) == 1 })
	var caseRef string
	eventually(t, "the case reference recorded", func() bool {
		rec, found, err := o.hub.Store().FindReferral(t.Context(), intake.Lookup{ReferralID: id})
		caseRef = rec.Refs.CaseReference
		return err == nil && found && caseRef != ""
	})
	if cancelled := post("cancellation-revoked.json"); cancelled != id {
		t.Fatalf("the cancellation answered referral %s, want %s", cancelled, id)
	}
	eventually(t, "the cancellation's note on the case", func() bool { return len(council.Notes(caseRef)) == 1 })
	if hs, err := o.hub.Store().Held(t.Context()); err != nil || len(hs) != 0 {
		t.Errorf("open holds after the release: %+v, %v", hs, err)
	}
}

// TestHeldReleaseByCommandSaysThePermissionStands: 'iceshub held release'
// with the hub stopped queues the held copy and says that the permission
// is now recorded with the referral, as it is.
func TestHeldReleaseByCommandSaysThePermissionStands(t *testing.T) {
	o := startOpsHub(t, opsHubConfig{mutate: func(cfg *config.Config) {
		for i, r := range cfg.Routes {
			if r.Message == string(model.KindReferral) && r.To == config.RecipientCouncil {
				cfg.Routes[i].RequiresPermission = true
			}
		}
	}})
	id := o.send(t, referralTemplate(t))
	hold := openHoldOf(t, o, id)
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}
	// The command cuts the copy by the hub's routes: its configuration,
	// the built-in one with the council's route needing permission.
	yaml := string(mustRead(t, "../../internal/config/default.yaml"))
	for old, repl := range map[string]string{
		"    to: council                 # the council whose area holds the person's address\n": "    to: council\n    requires_permission: true\n",
		"  data_dir: data ": "  data_dir: " + o.dir + " ",
	} {
		if !strings.Contains(yaml, old) {
			t.Fatalf("the built-in configuration changed: no %q", old)
		}
		yaml = strings.Replace(yaml, old, repl, 1)
	}
	cfgPath := filepath.Join(t.TempDir(), "iceshub.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	args := []string{"held", "release", fmt.Sprint(hold.ID), "--permission-recorded-by", "OT D. Example", "--evidence", "SA-0042", "--config", cfgPath}
	if code := run(args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "released") ||
		!strings.Contains(out.String(), "its later messages go without a hold") {
		t.Fatalf("held release = %d\n%s%s", code, out.String(), errOut.String())
	}
	st, err := hub.OpenExisting(hub.SQLiteAt(o.dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, found, err := st.FindReferral(t.Context(), intake.Lookup{ReferralID: id})
	if err != nil || !found || rec.Referral.Permission == nil || !rec.Referral.Permission.Given || rec.Referral.Permission.Source != routes.PermissionSourceOperator {
		t.Errorf("the referral's permission after the release: %+v, %v", rec.Referral.Permission, err)
	}
}
