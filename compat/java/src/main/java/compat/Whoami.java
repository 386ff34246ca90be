package compat;

import software.amazon.awssdk.services.sts.StsClient;
import software.amazon.awssdk.services.sts.model.GetCallerIdentityResponse;

/**
 * Calls STS GetCallerIdentity with the SDK's defaults — DefaultCredentialsProvider, the default
 * region chain and endpoint resolution, nothing in code — and prints {@code ARN <arn>}. Under
 * {@code podid exec} the chain can only find the container provider (the node agent), and
 * AWS_ENDPOINT_URL_STS points the client at podid.
 */
public final class Whoami {
    private Whoami() {}

    public static void main(String[] args) {
        try (StsClient sts = StsClient.create()) {
            GetCallerIdentityResponse me = sts.getCallerIdentity();
            System.out.println("ARN " + me.arn());
        } catch (RuntimeException e) {
            System.err.println("GetCallerIdentity failed: " + e);
            System.exit(1);
        }
    }
}
