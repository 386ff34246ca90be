package compat;

import java.io.File;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.eks.EksClient;
import software.amazon.awssdk.services.iam.IamClient;

/**
 * A {@code podid dev} on a free loopback port in a temp dir, with its admin key from dev.env, and
 * {@code podid exec} to run a command as a pod of its cluster {@code dev}.
 */
final class Podid implements AutoCloseable {
    static final String ACCOUNT = "000000000000";
    private static final String TRUST = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
            + "\"Principal\":{\"Service\":\"pods.eks.amazonaws.com\"},\"Action\":[\"sts:AssumeRole\",\"sts:TagSession\"]}]}";
    private static final Pattern EXPORT = Pattern.compile("^export (\\w+)=(.*)$");

    final Path dataDir;
    final String endpoint;
    final Map<String, String> env;
    private final Process dev;

    private Podid(Path dataDir, String endpoint, Map<String, String> env, Process dev) {
        this.dataDir = dataDir;
        this.endpoint = endpoint;
        this.env = env;
        this.dev = dev;
    }

    static String bin() {
        String bin = System.getenv("PODID_BIN");
        return bin != null && !bin.isEmpty() ? bin : Path.of("../../target/debug/podid").toAbsolutePath().normalize().toString();
    }

    /** The environment without the developer's AWS or podid settings. */
    static void clean(Map<String, String> env) {
        env.keySet().removeIf(k -> k.startsWith("AWS_") || k.startsWith("PODID_"));
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static Map<String, String> readDevEnv(Path file) throws IOException {
        Map<String, String> env = new HashMap<>();
        if (!Files.exists(file)) {
            return env;
        }
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            Matcher m = EXPORT.matcher(line.trim());
            if (m.matches()) {
                env.put(m.group(1), m.group(2).replaceAll("^['\"]|['\"]$", ""));
            }
        }
        return env;
    }

    static Podid start() throws Exception {
        Path dir = Files.createTempDirectory("podid-compat-java-");
        int port = freePort();
        Path log = dir.resolve("dev.log");
        ProcessBuilder pb = new ProcessBuilder(bin(), "dev", "--data-dir", dir.toString(), "--listen",
                "127.0.0.1:" + port, "--log-format", "json");
        clean(pb.environment());
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        Process dev = pb.start();
        Path envFile = dir.resolve("dev.env");
        Instant deadline = Instant.now().plus(Duration.ofSeconds(60));
        while (!readDevEnv(envFile).containsKey("PODID_AGENT_URL")) {
            if (!dev.isAlive() || Instant.now().isAfter(deadline)) {
                dev.destroy();
                throw new IllegalStateException("podid dev did not write dev.env with PODID_AGENT_URL: "
                        + Files.readString(log));
            }
            Thread.sleep(100);
        }
        return new Podid(dir, "http://127.0.0.1:" + port, readDevEnv(envFile), dev);
    }

    /** Creates role {@code role} and associates it with default/serviceAccount in cluster dev. */
    String associate(String role, String serviceAccount) {
        var creds = StaticCredentialsProvider.create(
                AwsBasicCredentials.create(env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")));
        URI uri = URI.create(endpoint);
        Region region = Region.of(env.get("AWS_REGION"));
        try (IamClient iam = IamClient.builder().endpointOverride(uri).region(region).credentialsProvider(creds).build();
                EksClient eks = EksClient.builder().endpointOverride(uri).region(region).credentialsProvider(creds).build()) {
            String arn = iam.createRole(r -> r.roleName(role).assumeRolePolicyDocument(TRUST)).role().arn();
            eks.createPodIdentityAssociation(r -> r.clusterName("dev").namespace("default")
                    .serviceAccount(serviceAccount).roleArn(arn));
            return arn;
        }
    }

    record Run(int code, String stdout, String stderr) {}

    /** Runs {@code cmd} under {@code podid exec} as pod {@code pod} of default/serviceAccount. */
    Run execAsPod(String serviceAccount, String pod, List<String> cmd) throws Exception {
        List<String> args = new ArrayList<>(List.of(bin(), "exec", "--data-dir", dataDir.toString(),
                "--agent-url", env.get("PODID_AGENT_URL"), "--endpoint", endpoint,
                "--namespace", "default", "--service-account", serviceAccount, "--pod-name", pod, "--"));
        args.addAll(cmd);
        ProcessBuilder pb = new ProcessBuilder(args);
        clean(pb.environment());
        File out = File.createTempFile("podid-exec", ".out");
        File err = File.createTempFile("podid-exec", ".err");
        pb.redirectOutput(out).redirectError(err);
        Process p = pb.start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("podid exec did not finish in 120 s");
        }
        Run run = new Run(p.exitValue(), Files.readString(out.toPath()), Files.readString(err.toPath()));
        out.delete();
        err.delete();
        return run;
    }

    @Override
    public void close() throws InterruptedException {
        dev.destroy();
        if (!dev.waitFor(20, TimeUnit.SECONDS)) {
            dev.destroyForcibly().waitFor();
        }
        try (var paths = Files.walk(dataDir)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // A temp dir left behind is harmless.
        }
    }
}
