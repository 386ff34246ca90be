package compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Runs {@link Whoami} in a separate JVM under {@code podid exec}, as a pod would run it. */
class WhoamiTest {
    private static Podid podid;

    @BeforeAll
    static void start() throws Exception {
        podid = Podid.start();
    }

    @AfterAll
    static void stop() throws Exception {
        if (podid != null) {
            podid.close();
        }
    }

    /** A java command line running Whoami with this test's classpath (SDK included). */
    private static List<String> whoami() {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        return List.of(java, "-cp", cp, "compat.Whoami");
    }

    @Test
    void defaultChainGetsPodIdentityCredentials() throws Exception {
        podid.associate("java-app", "java-app");
        Podid.Run run = podid.execAsPod("java-app", "java-pod", whoami());
        assertEquals(0, run.code(), run.stderr());
        String arn = run.stdout().trim();
        assertTrue(arn.matches("ARN arn:aws:sts::" + Podid.ACCOUNT + ":assumed-role/java-app/eks-dev-java-pod-\\S+"), arn);
    }

    @Test
    void noAssociationNoCredentials() throws Exception {
        Podid.Run run = podid.execAsPod("nobody", "java-pod", whoami());
        assertNotEquals(0, run.code(), run.stdout());
        assertTrue(run.stderr().contains("ContainerCredentialsProvider(): The requested metadata is not found"), run.stderr());
    }
}
