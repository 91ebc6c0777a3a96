import AirlockEgress
import AirlockImages
import AirlockPolicy
import AirlockState
import AirlockSystem

/// The organisation's say over where images come from: `allowedRegistries` in
/// `/etc/airlock/policy.yaml`. Checked before any pull from a registry; archives, layouts and
/// the local Docker store are the user's own files and are not registries.
public enum RegistryAccess {
    public static func check(_ source: ImageSource, organisation: String = UserConfig.organisationPolicy) throws {
        guard case .registry(let reference) = source else { return }
        let settings: PolicySettings?
        do {
            settings = try PolicyStore.load(organisation)
        } catch {
            throw AirlockError(.invalidConfiguration, error.description)
        }
        guard let settings, !settings.allowsRegistry(reference.registry) else { return }
        throw AirlockError(
            .conflict,
            "\(organisation) allows images only from \((settings.allowedRegistries ?? []).joined(separator: ", ")), not from \(reference.registry)"
        )
    }
}
