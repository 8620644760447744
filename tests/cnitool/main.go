// Command cnitool runs a CNI network list the way a container runtime does,
// through libcni: it is the test suite's stand-in for kubelet/containerd and
// the operator's tool for running the plugin by hand.
//
// Usage: cnitool add|check|del <network-name> <netns-path>
//
// Environment: NETCONFPATH (directory of .conflist files, default /etc/cni/net.d),
// CNI_PATH (plugin directories), CNI_IFNAME (default eth0), CNI_CONTAINERID
// (default derived from the netns path), CNI_ARGS (K=V;K=V), CAP_ARGS (JSON
// object of capability arguments, e.g. {"portMappings": [...]}),
// CNI_CACHE_DIR (libcni's result cache).
package main

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "cnitool: "+format+"\n", args...)
	os.Exit(1)
}

func parseCniArgs(raw string) [][2]string {
	var pairs [][2]string
	for _, item := range strings.Split(raw, ";") {
		if item == "" {
			continue
		}
		kv := strings.SplitN(item, "=", 2)
		if len(kv) != 2 {
			fail("invalid CNI_ARGS pair %q", item)
		}
		pairs = append(pairs, [2]string{kv[0], kv[1]})
	}
	return pairs
}

func main() {
	if len(os.Args) != 4 {
		fail("usage: cnitool add|check|del <network-name> <netns-path>")
	}
	verb, netName, netns := os.Args[1], os.Args[2], os.Args[3]

	confDir := os.Getenv("NETCONFPATH")
	if confDir == "" {
		confDir = "/etc/cni/net.d"
	}
	netList, err := libcni.LoadConfList(confDir, netName)
	if err != nil {
		fail("loading network %q from %s: %v", netName, confDir, err)
	}

	capArgs := map[string]interface{}{}
	if raw := os.Getenv("CAP_ARGS"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &capArgs); err != nil {
			fail("CAP_ARGS is not a JSON object: %v", err)
		}
	}
	ifName := os.Getenv("CNI_IFNAME")
	if ifName == "" {
		ifName = "eth0"
	}
	containerID := os.Getenv("CNI_CONTAINERID")
	if containerID == "" {
		containerID = fmt.Sprintf("cnitool-%x", sha512.Sum512([]byte(netns)))[:20]
	}
	netnsPath, err := filepath.Abs(netns)
	if err != nil {
		fail("netns path %q: %v", netns, err)
	}

	rt := &libcni.RuntimeConf{
		ContainerID:    containerID,
		NetNS:          netnsPath,
		IfName:         ifName,
		Args:           parseCniArgs(os.Getenv("CNI_ARGS")),
		CapabilityArgs: capArgs,
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	ctx := context.Background()

	switch verb {
	case "add":
		result, err := cni.AddNetworkList(ctx, netList, rt)
		if err != nil {
			fail("add: %v", err)
		}
		if err := result.Print(); err != nil {
			fail("printing result: %v", err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, netList, rt); err != nil {
			fail("check: %v", err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, netList, rt); err != nil {
			fail("del: %v", err)
		}
	default:
		fail("unknown verb %q (add, check, del)", verb)
	}
}
