// Command whoami calls STS GetCallerIdentity with config.LoadDefaultConfig — the SDK's default
// credential chain, no credentials, endpoint or region in code. Under `podid exec` the chain can
// only find the container provider (the node agent), and AWS_ENDPOINT_URL_STS points at podid.
//
//	whoami                  one call; prints `ARN <arn>`
//	whoami LOOP_S EVERY_S   calls every EVERY_S seconds for LOOP_S seconds, printing
//	                        `ARN <arn> KEY <access key id>` per call, the key being the one the
//	                        config's own credential cache holds (the one the client signs with)
//
// Any failed call exits non-zero at once.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "GetCallerIdentity failed: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryMaxAttempts(1))
	if err != nil {
		return err
	}
	client := sts.NewFromConfig(cfg)
	if len(args) != 2 {
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return err
		}
		fmt.Printf("ARN %s\n", aws.ToString(out.Arn))
		return nil
	}
	loop, err1 := strconv.Atoi(args[0])
	every, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("usage: whoami [LOOP_S EVERY_S]")
	}
	end := time.Now().Add(time.Duration(loop) * time.Second)
	for time.Now().Before(end) {
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return err
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("ARN %s KEY %s\n", aws.ToString(out.Arn), creds.AccessKeyID)
		time.Sleep(time.Duration(every) * time.Second)
	}
	return nil
}
