package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

func adminCall(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.Contains(token, " "): // a whole Authorization header
		req.Header.Set("Authorization", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAdminAPI: without a token the admin API does not exist; with one,
// every endpoint needs it, and list, show, discard, replay and held work
// as the dlq and held commands do.
//
// Longer than 100 lines: one operator's session with the admin API, told in order: each step needs
// the state the one before left.
func TestAdminAPI(t *testing.T) {
	t.Run("disabled without a token", func(t *testing.T) {
		o := startOpsHub(t, opsHubConfig{})
		if code, _ := adminCall(t, http.MethodGet, o.base+"/admin/dlq", "anything", ""); code != http.StatusNotFound {
			t.Errorf("GET /admin/dlq without a configured token = %d, want 404", code)
		}
		if !strings.Contains(o.logs.String(), "admin API disabled") {
			t.Error("the start-up log does not say the admin API is disabled")
		}
	})

	const token = "fictional-admin-token-for-tests-of-32-bytes-or-more"
	o := startOpsHub(t, opsHubConfig{adminToken: token})
	prov := o.sims.Provider
	prov.FailNext(2, http.StatusUnprocessableEntity, "")
	template := referralTemplate(t)
	id1, id2 := o.send(t, template), o.send(t, template)
	eventually(t, "two dead letters", func() bool { return len(o.deadLetters(t)) == 2 })
	dls := o.deadLetters(t)
	byRef := map[string]int64{dls[0].ReferralID: dls[0].ID, dls[1].ReferralID: dls[1].ID}
	dl1, dl2 := byRef[id1], byRef[id2]

	for _, c := range []struct{ method, path string }{
		{"GET", "/admin/dlq"}, {"GET", fmt.Sprintf("/admin/dlq/%d", dl1)}, {"POST", fmt.Sprintf("/admin/dlq/%d/replay", dl1)},
		{"POST", fmt.Sprintf("/admin/dlq/%d/discard", dl1)}, {"GET", "/admin/held"}, {"GET", "/admin/nothing"},
	} {
		for _, bad := range []string{"", "wrong-token", token + "x"} {
			code, body := adminCall(t, c.method, o.base+c.path, bad, "")
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q = %d, want 401", c.method, c.path, bad, code)
			}
			if strings.Contains(string(body), "deadLetters") {
				t.Errorf("%s %s without the token leaked %s", c.method, c.path, body)
			}
		}
	}

	// The scheme in any case (RFC 7235), but only Bearer, and a space after it.
	for header, want := range map[string]int{"bearer " + token: 200, "BEARER  " + token: 200, "Basic " + token: 401, "Bearer " + token[:31]: 401} {
		if code, _ := adminCall(t, http.MethodGet, o.base+"/admin/held", header, ""); code != want {
			t.Errorf("Authorization %q... = %d, want %d", header[:10], code, want)
		}
	}

	code, body := adminCall(t, http.MethodGet, o.base+"/admin/dlq", token, "")
	var list struct {
		DeadLetters []struct {
			ID             int64  `json:"id"`
			Recipient      string `json:"recipient"`
			IdempotencyKey string `json:"idempotencyKey"`
			State          string `json:"state"`
		} `json:"deadLetters"`
	}
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil || len(list.DeadLetters) != 2 || list.DeadLetters[0].State != "open" {
		t.Fatalf("GET /admin/dlq = %d %s (%v)", code, body, err)
	}

	code, body = adminCall(t, http.MethodGet, fmt.Sprintf("%s/admin/dlq/%d", o.base, dl1), token, "")
	var shown struct {
		StatusCode int            `json:"statusCode"`
		Delivery   model.Delivery `json:"delivery"`
	}
	if err := json.Unmarshal(body, &shown); code != http.StatusOK || err != nil || shown.StatusCode != 422 ||
		shown.Delivery.IdempotencyKey != routes.IdempotencyKey(id1, "provider", model.KindReferral) {
		t.Fatalf("GET /admin/dlq/%d = %d %s (%v)", dl1, code, body, err)
	}

	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/admin/dlq/abc", "", http.StatusBadRequest},
		{"GET", "/admin/dlq/999999", "", http.StatusNotFound},
		{"POST", fmt.Sprintf("/admin/dlq/%d/discard", dl2), "", http.StatusBadRequest},
		{"POST", fmt.Sprintf("/admin/dlq/%d/discard", dl2), `{"reason": 5}`, http.StatusBadRequest},
		{"POST", fmt.Sprintf("/admin/dlq/%d/discard", dl2), `{"reason":"x","extra":1}`, http.StatusBadRequest},
	} {
		code, body := adminCall(t, c.method, o.base+c.path, token, c.body)
		if code != c.want {
			t.Errorf("%s %s %s = %d %s, want %d", c.method, c.path, c.body, code, body, c.want)
		}
		var eb struct{ Code, Message string }
		if json.Unmarshal(body, &eb) != nil || eb.Code == "" || eb.Message == "" {
			t.Errorf("%s %s: error body %s is not {code, message}", c.method, c.path, body)
		}
	}

	code, body = adminCall(t, http.MethodPost, fmt.Sprintf("%s/admin/dlq/%d/replay", o.base, dl1), token, `{"by":"A. Operator","reason":"provider fixed"}`)
	if code != http.StatusOK {
		t.Fatalf("replay = %d %s", code, body)
	}
	eventually(t, "the replay to reach the provider", func() bool { return prov.Stats().Created == 1 })
	if code, body := adminCall(t, http.MethodPost, fmt.Sprintf("%s/admin/dlq/%d/replay", o.base, dl1), token, ""); code != http.StatusConflict {
		t.Errorf("second replay = %d %s, want 409", code, body)
	}
	code, body = adminCall(t, http.MethodPost, fmt.Sprintf("%s/admin/dlq/%d/discard", o.base, dl2), token, `{"reason":"duplicate of a referral sent again by the requester"}`)
	if code != http.StatusOK {
		t.Fatalf("discard = %d %s", code, body)
	}
	got, err := o.hub.Store().DeadLetter(t.Context(), dl2)
	if err != nil || got.Resolution == nil || got.Resolution.Action != store.ActionDiscarded || got.Resolution.By != "admin-api" || len(got.Payload) == 0 {
		t.Errorf("discarded dead letter = %+v, %v; want kept with its payload, resolution recorded", got.Resolution, err)
	}
	code, body = adminCall(t, http.MethodGet, o.base+"/admin/dlq", token, "")
	if code != http.StatusOK || !strings.Contains(string(body), `"deadLetters":[]`) {
		t.Errorf("open dead letters after replay and discard: %d %s", code, body)
	}
	code, body = adminCall(t, http.MethodGet, o.base+"/admin/held", token, "")
	if code != http.StatusOK || !strings.Contains(string(body), `"held":[]`) {
		t.Errorf("GET /admin/held = %d %s", code, body)
	}

	// A referral no council covers is held; both views list it.
	if status, answer, err := o.sims.PostBundle(t.Context(), o.base, mustRead(t, "../../testdata/fhir/referral-no-council.json")); err != nil || status != http.StatusOK {
		t.Fatalf("POST = %d, %v\n%s", status, err, answer)
	}
	eventually(t, "a hold", func() bool {
		held, err := o.hub.Store().Held(t.Context())
		return err == nil && len(held) == 1
	})
	code, body = adminCall(t, http.MethodGet, o.base+"/admin/held", token, "")
	var held struct {
		Held []struct {
			ID    int64  `json:"id"`
			Route string `json:"route"`
		} `json:"held"`
	}
	if err := json.Unmarshal(body, &held); code != http.StatusOK || err != nil || len(held.Held) != 1 || held.Held[0].Route != "council" || held.Held[0].ID == 0 {
		t.Errorf("GET /admin/held = %d %s", code, body)
	}
	var out, errOut strings.Builder
	if code := run([]string{"held", "list", "--data", o.dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "no council covers") {
		t.Errorf("held list = %d\n%s%s", code, out.String(), errOut.String())
	}
}
