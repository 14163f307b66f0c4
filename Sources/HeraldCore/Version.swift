/// Herald's version, printed by `herald --version` and reported by the API.
public enum HeraldVersion {
    public static let string = "0.1.0"
}
