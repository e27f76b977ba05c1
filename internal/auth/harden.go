package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/iceshub/iceshub/internal/jsonlimit"
)

// hardenBody checks r's content type, reads its body up to the limit, checks
// the JSON's shape and puts the body back for the handler.
func hardenBody(w http.ResponseWriter, r *http.Request, l Limits) *Error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if strings.TrimSpace(ct) == "" || err != nil || !slices.Contains(l.ContentTypes, mt) {
		return refuse(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "content_type",
			"unsupported Content-Type: send "+strings.Join(l.ContentTypes, " or "))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return refuse(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "charset", "unsupported charset: send UTF-8")
	}
	tooLarge := refuse(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "body_too_large",
		fmt.Sprintf("the request body is larger than this endpoint accepts (%d bytes)", l.MaxBodyBytes))
	if r.ContentLength > l.MaxBodyBytes {
		return tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, l.MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge
	case err != nil:
		return refuse(http.StatusBadRequest, CodeInvalidJSON, "body_unreadable", "the request body could not be read")
	}
	if err := jsonlimit.Check(body, l.MaxJSONDepth, l.MaxJSONValues); err != nil {
		if errors.Is(err, jsonlimit.ErrTooDeep) {
			return refuse(http.StatusBadRequest, CodeInvalidJSON, "json_too_deep", err.Error())
		}
		return refuse(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "json_too_many_values", err.Error())
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return nil
}
