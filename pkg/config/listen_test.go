package config

import "testing"

func TestParseListen(t *testing.T) {
	tests := []struct {
		in       string
		want     string
		loopback bool
		wantErr  bool
	}{
		{in: "127.0.0.1:32125", want: "127.0.0.1:32125", loopback: true},
		{in: "[::1]:80", want: "[::1]:80", loopback: true},
		{in: "[::ffff:127.0.0.1]:80", want: "127.0.0.1:80", loopback: true},
		{in: "0.0.0.0:0", want: "0.0.0.0:0"},
		{in: "10.1.2.3:9", want: "10.1.2.3:9"},
		{in: "localhost:80", wantErr: true},
		{in: ":80", wantErr: true},
		{in: "127.0.0.1", wantErr: true},
		{in: "127.0.0.1:http", wantErr: true},
		{in: "127.0.0.1:70000", wantErr: true},
	}
	for _, tt := range tests {
		ap, err := ParseListen(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseListen(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && (ap.String() != tt.want || ap.Addr().IsLoopback() != tt.loopback) {
			t.Errorf("ParseListen(%q) = %s (loopback %v), want %s (%v)", tt.in, ap, ap.Addr().IsLoopback(), tt.want, tt.loopback)
		}
	}
}
