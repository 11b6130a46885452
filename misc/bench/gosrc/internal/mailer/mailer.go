// Package mailer composes and sends the services' notification mails.
package mailer

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/smtp"
	"net/textproto"
)

// Compose builds a multipart message with a text part.
func Compose(from, to, subject string, body []byte) ([]byte, error) {
	if _, err := mail.ParseAddress(to); err != nil {
		return nil, fmt.Errorf("mailer: bad recipient %q: %w", to, err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fmt.Fprintf(&buf, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\n", from, to,
		mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&buf, "Content-Type: multipart/mixed; boundary=%s\r\n\r\n", mw.Boundary())
	part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}})
	if err != nil {
		return nil, err
	}
	if _, err := part.Write(body); err != nil {
		return nil, err
	}
	err = mw.Close()
	return buf.Bytes(), err
}

// Send delivers msg through the SMTP relay at addr.
func Send(addr, from string, to []string, msg []byte) error {
	return smtp.SendMail(addr, nil, from, to, msg)
}

// Feature composes a mail whose body is the input.
func Feature(ctx context.Context, in []byte) ([]byte, error) {
	return Compose("noreply@example.com", "ops@example.com", "notification", in)
}
