package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/seedcast/seedcast/sfu/call/client"
)

func deviceCommand(stdout, stderr io.Writer) *ffcli.Command {
	var (
		server, identity, name, contactsFile, ring string
		contacts                                   listFlag
		autoAnswer, answer, printLink              bool
		wf                                         webrtcFlags
		lf                                         logFlags
	)
	fs := flag.NewFlagSet("seedcast device", flag.ContinueOnError)
	fs.StringVar(&server, "server", "http://127.0.0.1:8080", "the Seedcast server")
	fs.StringVar(&identity, "identity", defaultIdentityPath(), "this device's identity (Ed25519 and X25519 keys; made on first use, mode 0600)")
	fs.StringVar(&name, "name", "", "this device's display name (kept in the identity)")
	fs.Var(&contacts, "contact", "a contact's link (repeatable): the people who may ring this device")
	fs.StringVar(&contactsFile, "contacts-file", "", "a file of contact links, one a line")
	fs.BoolVar(&autoAnswer, "auto-answer", false, "answer calls from this identity's own other devices at once")
	fs.BoolVar(&answer, "answer", false, "answer every call from a contact (a device its owner leaves running)")
	fs.StringVar(&ring, "ring", "", "ring this contact (a contact link, or its key) once online")
	fs.BoolVar(&printLink, "print-link", false, "print this device's contact link and exit")
	wf.register(fs)
	lf.register(fs)
	return &ffcli.Command{
		Name:       "device",
		ShortUsage: "seedcast device --server URL [--name NAME] [--contact LINK ...] [--auto-answer | --answer] [--ring LINK]",
		ShortHelp:  "a native device with its own identity: holds presence, rings and answers contacts, and receives calls end-to-end decrypted",
		LongHelp: "The native counterpart of a browser on /contacts (docs/protocol.md §7): an identity kept\n" +
			"in a file, a presence connection that proves it, contacts given as their links. A call it\n" +
			"answers, it joins and receives: it logs the video frames it gets and how many decrypt with\n" +
			"the call's end-to-end key. It sends no media (it has no camera).",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			log, err := lf.logger(stderr)
			if err != nil {
				return err
			}
			id, err := client.LoadIdentity(identity, name)
			if err != nil {
				return err
			}
			if printLink {
				fmt.Fprintln(stdout, id.ContactLink(server))
				return nil
			}
			links := append([]string(nil), contacts...)
			if contactsFile != "" {
				f, err := os.Open(contactsFile)
				if err != nil {
					return err
				}
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
						links = append(links, l)
					}
				}
				f.Close()
			}
			p := client.RunParams{Server: server, Identity: id, AutoAnswer: autoAnswer, Answer: answer, Logger: log}
			for _, l := range links {
				c, err := client.ParseContactLink(l)
				if err != nil {
					return fmt.Errorf("--contact %q: %w", l, err)
				}
				p.Contacts = append(p.Contacts, c)
			}
			if ring != "" {
				for _, c := range p.Contacts {
					if strings.Contains(ring, client.KeyString(c.Key)) {
						p.Ring = c.Key
					}
				}
				if p.Ring == nil {
					return fmt.Errorf("--ring: not one of the contacts")
				}
			}
			ice, _, err := wf.config()
			if err != nil {
				return err
			}
			p.API = client.NewAPI(ice.SettingEngine())
			fmt.Fprintf(stdout, "contact link: %s\n", id.ContactLink(server))
			r, err := client.NewRunner(p)
			if err != nil {
				return err
			}
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
}

// defaultIdentityPath is $XDG_CONFIG_HOME/seedcast/device.json
// (~/.config/…).
func defaultIdentityPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "seedcast-device.json"
	}
	return filepath.Join(dir, "seedcast", "device.json")
}
